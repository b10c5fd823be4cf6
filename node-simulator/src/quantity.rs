//! Resource quantities (`500m`, `2`, `128Mi`, `1.5G`, `1e3`) as the kubelet's admission compares
//! them: in thousandths of the unit, rounded up.

/// The quantity in thousandths (`"500m"` -> 500, `"1Ki"` -> 1_024_000), None when malformed.
pub fn parse_millis(s: &str) -> Option<u128> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') && num.len() == 1 {
        return None;
    }
    let (mul, div, exp10): (u128, u128, i32) = match suffix {
        "" => (1, 1, 0),
        "m" => (1, 1000, 0),
        "u" => (1, 1_000_000, 0),
        "n" => (1, 1_000_000_000, 0),
        "k" => (1, 1, 3),
        "M" => (1, 1, 6),
        "G" => (1, 1, 9),
        "T" => (1, 1, 12),
        "P" => (1, 1, 15),
        "E" => (1, 1, 18),
        "Ki" => (1 << 10, 1, 0),
        "Mi" => (1 << 20, 1, 0),
        "Gi" => (1 << 30, 1, 0),
        "Ti" => (1 << 40, 1, 0),
        "Pi" => (1 << 50, 1, 0),
        "Ei" => (1 << 60, 1, 0),
        e if e.starts_with(['e', 'E']) => (1, 1, e[1..].parse::<i32>().ok().filter(|x| (-9..=18).contains(x))?),
        _ => return None,
    };
    let num = num.strip_prefix('+').unwrap_or(num);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || int.len() > 20 || frac.len() > 9 {
        return None;
    }
    // value = (int.frac) * mul / div * 10^exp10 * 1000, computed exactly on an integer of
    // `frac.len()` decimals and rounded up at the end.
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    let mut numer = digits.checked_mul(mul)?.checked_mul(1000)?;
    let mut denom = div.checked_mul(10u128.pow(frac.len() as u32))?;
    if exp10 >= 0 {
        numer = numer.checked_mul(10u128.pow(exp10 as u32))?;
    } else {
        denom = denom.checked_mul(10u128.pow((-exp10) as u32))?;
    }
    Some(numer.div_ceil(denom))
}

/// A CPU quantity as the kubelet prints it: whole cores as an integer, otherwise millicores.
pub fn canonical_cpu(s: &str) -> String {
    match parse_millis(s) {
        Some(m) if m % 1000 == 0 => (m / 1000).to_string(),
        Some(m) => format!("{m}m"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_millis_rounded_up() {
        assert_eq!(parse_millis("500m"), Some(500));
        assert_eq!(parse_millis("2"), Some(2000));
        assert_eq!(parse_millis("1.5"), Some(1500));
        assert_eq!(parse_millis("0.0001"), Some(1));
        assert_eq!(parse_millis("1Ki"), Some(1_024_000));
        assert_eq!(parse_millis("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(parse_millis("1G"), Some(1_000_000_000_000));
        assert_eq!(parse_millis("1e3"), Some(1_000_000));
        assert_eq!(parse_millis("100n"), Some(1));
        assert_eq!(parse_millis("+3"), Some(3000));
        for bad in ["", "abc", "1Q", "1..2", "m", ".", "1e99", "-1"] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
        assert_eq!(canonical_cpu("8"), "8");
        assert_eq!(canonical_cpu("1500m"), "1500m");
        assert_eq!(canonical_cpu("2000m"), "2");
    }
}
