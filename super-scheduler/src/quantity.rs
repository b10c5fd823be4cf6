//! `resource.Quantity` as the scheduler reads it: `Value()` (whole units, rounded up) and
//! `MilliValue()` (thousandths, rounded up), exactly, without floating point. Text kube-apiserver
//! would reject reads as `None`; callers treat it as zero, as a validated object never has it.

/// A parsed quantity: `mantissa * 10^exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dec {
    mantissa: i128,
    exp: i32,
}

const DECIMAL_SUFFIXES: &[(&str, i32)] = &[("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
const BINARY_SUFFIXES: &[(&str, u32)] = &[("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];

fn parse(s: &str) -> Option<Dec> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None;
    }
    let mut mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let mut exp = -(frac_part.len() as i32);
    if let Some((_, e)) = DECIMAL_SUFFIXES.iter().find(|(x, _)| *x == suffix) {
        exp += e;
    } else if let Some((_, p)) = BINARY_SUFFIXES.iter().find(|(x, _)| *x == suffix) {
        mantissa = mantissa.checked_mul(1i128 << p)?;
    } else if let Some(e) = suffix.strip_prefix(['e', 'E']) {
        let e: i32 = e.parse().ok()?;
        if !(-100..=100).contains(&e) {
            return None;
        }
        exp += e;
    } else {
        return None;
    }
    Some(Dec { mantissa: if negative { -mantissa } else { mantissa }, exp })
}

/// `mantissa * 10^(exp + scale)`, rounded up, saturated to the i64 range.
fn scaled(d: Dec, scale: i32) -> i64 {
    let e = d.exp + scale;
    let v: i128 = if e >= 0 {
        match 10i128.checked_pow(e as u32).and_then(|p| d.mantissa.checked_mul(p)) {
            Some(v) => v,
            None => return if d.mantissa < 0 { i64::MIN } else { i64::MAX },
        }
    } else {
        match 10i128.checked_pow((-e) as u32) {
            // Ceiling division (towards +infinity), as Quantity.Value/MilliValue round up.
            Some(p) => d.mantissa.div_euclid(p) + if d.mantissa.rem_euclid(p) != 0 { 1 } else { 0 },
            None => {
                if d.mantissa > 0 {
                    1
                } else {
                    0
                }
            }
        }
    };
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// `Quantity.Value()`: whole units, rounded up (`1500m` is 2, `1Ki` is 1024).
pub fn value(s: &str) -> Option<i64> {
    parse(s).map(|d| scaled(d, 0))
}

/// `Quantity.MilliValue()`: thousandths, rounded up (`1.5` is 1500, `100m` is 100).
pub fn milli_value(s: &str) -> Option<i64> {
    parse(s).map(|d| scaled(d, 3))
}

/// A quantity read from JSON: a string, or a number as some clients send it.
pub fn json_value(v: &serde_json::Value, milli: bool) -> Option<i64> {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if milli {
        milli_value(&s)
    } else {
        value(&s)
    }
}

/// Prints an amount the way a canonical quantity reads: cpu (in thousandths) as `2` or `1500m`;
/// other resources with the largest binary suffix that divides them (`4Gi`, `512Mi`), else as a
/// plain number.
pub fn format(amount: i64, is_cpu: bool) -> String {
    if is_cpu {
        return if amount % 1000 == 0 { format!("{}", amount / 1000) } else { format!("{amount}m") };
    }
    if amount != 0 {
        for (suffix, p) in BINARY_SUFFIXES.iter().rev() {
            let unit = 1i64 << p;
            if amount % unit == 0 {
                return format!("{}{suffix}", amount / unit);
            }
        }
    }
    amount.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_up_like_upstream() {
        assert_eq!(milli_value("1"), Some(1000));
        assert_eq!(milli_value("100m"), Some(100));
        assert_eq!(milli_value("0.5"), Some(500));
        assert_eq!(milli_value("1.0001"), Some(1001));
        assert_eq!(milli_value("1u"), Some(1));
        assert_eq!(value("1500m"), Some(2));
        assert_eq!(value("1Ki"), Some(1024));
        assert_eq!(value("1.5Gi"), Some(1610612736));
        assert_eq!(value("200Mi"), Some(209715200));
        assert_eq!(value("1e3"), Some(1000));
        assert_eq!(value("2k"), Some(2000));
        assert_eq!(value("1M"), Some(1_000_000));
        assert_eq!(value("-1"), Some(-1));
        assert_eq!(value("-1500m"), Some(-1));
        assert_eq!(value(""), None);
        assert_eq!(value("1.2.3"), None);
        assert_eq!(value("3x"), None);
        assert_eq!(value("99999999999999999999999999"), Some(i64::MAX));
    }

    #[test]
    fn json_numbers_are_quantities() {
        assert_eq!(json_value(&serde_json::json!(2), true), Some(2000));
        assert_eq!(json_value(&serde_json::json!("250m"), true), Some(250));
        assert_eq!(json_value(&serde_json::json!(null), true), None);
    }

    #[test]
    fn format_prints_canonical_text() {
        assert_eq!(format(2000, true), "2");
        assert_eq!(format(1500, true), "1500m");
        assert_eq!(format(4 << 30, false), "4Gi");
        assert_eq!(format(512 << 20, false), "512Mi");
        assert_eq!(format(1000, false), "1000");
        assert_eq!(format(3, false), "3");
        assert_eq!(format(0, false), "0");
    }
}
