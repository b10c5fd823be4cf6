//! `resource.Quantity` as kube-apiserver stores and prints it. Every quantity the API server
//! decodes is written back in canonical form (`1000m` becomes `1`, `1536Mi` stays, `0.5Gi`
//! becomes `512Mi`, a JSON number `2` becomes the string `"2"`), and resource lists are rounded
//! up to milli-units when defaulted (`SetDefaults_ResourceList`). Clients compare what they
//! applied with what they read back, so kplex stores the same text a real cluster would.
//!
//! Values are kept exactly as a decimal mantissa and exponent (no floating point), like
//! upstream's `int64Amount`/`inf.Dec` pair, within the range real manifests use.

use serde_json::Value;

/// How the quantity was written, which decides how it is printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, ... suffixes.
    BinarySI,
    /// No suffix or `n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`.
    DecimalSI,
    /// `e3`, `E-2`.
    DecimalExponent,
}

/// A parsed quantity: `mantissa * 10^exp`, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub mantissa: i128,
    pub exp: i32,
    pub format: Format,
}

const DECIMAL_SUFFIXES: &[(&str, i32)] = &[("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
const BINARY_SUFFIXES: &[(&str, u32)] = &[("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];

/// Upstream's cap on quantities (2^63 - 1).
const MAX: i128 = i64::MAX as i128;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Quantity {
    /// Parses as `resource.ParseQuantity` does; None for text it rejects.
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let (negative, rest) = match s.as_bytes()[0] {
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
        let format;
        if let Some((_, e)) = DECIMAL_SUFFIXES.iter().find(|(x, _)| *x == suffix) {
            format = Format::DecimalSI;
            exp += e;
        } else if let Some((_, p)) = BINARY_SUFFIXES.iter().find(|(x, _)| *x == suffix) {
            format = Format::BinarySI;
            mantissa = mantissa.checked_mul(1i128 << p)?;
        } else if let Some(e) = suffix.strip_prefix(['e', 'E']) {
            let e: i32 = e.parse().ok()?;
            if !(-1000..=1000).contains(&e) {
                return None;
            }
            format = Format::DecimalExponent;
            exp += e;
        } else {
            return None;
        }
        let mut q = Quantity { mantissa, exp, format }.normalized();
        // Values below one nano-unit are rounded up to it; the maximum is a simple cap.
        q = q.round_up(-9);
        if q.exceeds_max() {
            q = Quantity { mantissa: MAX, exp: 0, format: q.format };
        }
        if negative {
            q.mantissa = -q.mantissa;
        }
        Some(q)
    }

    /// A quantity given as a JSON string or number (upstream unmarshals both).
    pub fn from_json(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    /// Strips trailing decimal zeros of the mantissa into the exponent.
    fn normalized(mut self) -> Quantity {
        if self.mantissa == 0 {
            self.exp = 0;
            return self;
        }
        while self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exp += 1;
        }
        self
    }

    fn exceeds_max(&self) -> bool {
        if self.exp <= 0 {
            return false;
        }
        match pow10(self.exp as u32).and_then(|p| self.mantissa.abs().checked_mul(p)) {
            Some(v) => v > MAX,
            None => true,
        }
    }

    /// Rounds away from zero to `10^scale` (upstream's `RoundUp`).
    pub fn round_up(self, scale: i32) -> Quantity {
        if self.exp >= scale {
            return self;
        }
        let Some(div) = pow10((scale - self.exp) as u32) else {
            let sign = self.mantissa.signum();
            return Quantity { mantissa: sign, exp: scale, format: self.format };
        };
        let q = self.mantissa / div;
        let r = self.mantissa % div;
        let mantissa = if r == 0 { q } else { q + self.mantissa.signum() };
        Quantity { mantissa, exp: scale, format: self.format }.normalized()
    }

    /// The integer value when it is exact, as `AsScale(0)` reports.
    fn exact_integer(&self) -> Option<i128> {
        if self.exp >= 0 {
            pow10(self.exp as u32).and_then(|p| self.mantissa.checked_mul(p))
        } else {
            let div = pow10((-self.exp) as u32)?;
            (self.mantissa % div == 0).then(|| self.mantissa / div)
        }
    }

    /// The canonical text (`Quantity.String()`).
    pub fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".into();
        }
        let mut format = self.format;
        let mut integer = None;
        if format == Format::BinarySI {
            match self.exact_integer() {
                Some(v) if v.abs() >= 1024 => integer = Some(v),
                _ => format = Format::DecimalSI,
            }
        }
        if let Some(mut v) = integer {
            let mut pow = 0;
            while pow < 6 && v % 1024 == 0 {
                v /= 1024;
                pow += 1;
            }
            let suffix = if pow == 0 { "" } else { BINARY_SUFFIXES[pow - 1].0 };
            return format!("{v}{suffix}");
        }
        // Decimal: an integer mantissa with an exponent that is a multiple of three.
        let (mut m, mut e) = (self.mantissa, self.exp);
        let rem = e.rem_euclid(3);
        if rem != 0 {
            m *= 10i128.pow(rem as u32);
            e -= rem;
        }
        if format == Format::DecimalExponent {
            return if e == 0 { m.to_string() } else { format!("{m}e{e}") };
        }
        match DECIMAL_SUFFIXES.iter().find(|(_, x)| *x == e) {
            Some((suffix, _)) => format!("{m}{suffix}"),
            None if e > 18 => format!("{}E", m * 10i128.pow((e - 18) as u32)),
            None => {
                // Below nano: cannot happen after parse rounding; keep exact text.
                format!("{m}e{e}")
            }
        }
    }
}

/// Arithmetic and comparison, as resource quota needs them (`Quantity.Add`, `Sub`, `Cmp`).
/// A sum keeps the format of its left operand unless that is zero, as upstream's does, so
/// `64Mi + 64Mi` prints `128Mi` and `100m + 1` prints `1100m`.
impl Quantity {
    /// An integer quantity in decimal format (`resource.NewQuantity(n, DecimalSI)`).
    pub fn from_i64(n: i64) -> Quantity {
        Quantity { mantissa: n as i128, exp: 0, format: Format::DecimalSI }.normalized()
    }

    /// Zero, in decimal format.
    pub fn zero() -> Quantity {
        Quantity { mantissa: 0, exp: 0, format: Format::DecimalSI }
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        self.mantissa.signum() as i32
    }

    /// Both mantissas scaled to the smaller exponent; None when that overflows.
    fn aligned(&self, o: &Quantity) -> Option<(i128, i128, i32)> {
        let exp = self.exp.min(o.exp);
        let a = self.mantissa.checked_mul(pow10((self.exp - exp) as u32)?)?;
        let b = o.mantissa.checked_mul(pow10((o.exp - exp) as u32)?)?;
        Some((a, b, exp))
    }

    fn as_f64(&self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exp)
    }

    /// `self + o`.
    pub fn add(&self, o: &Quantity) -> Quantity {
        let format = if self.is_zero() { o.format } else { self.format };
        match self.aligned(o).and_then(|(a, b, exp)| a.checked_add(b).map(|m| (m, exp))) {
            Some((mantissa, exp)) => Quantity { mantissa, exp, format }.normalized(),
            // Beyond i128 at a common scale: the larger magnitude wins (upstream caps too).
            None => {
                if self.as_f64().abs() >= o.as_f64().abs() {
                    Quantity { format, ..*self }
                } else {
                    Quantity { format, ..*o }
                }
            }
        }
    }

    /// `self - o`.
    pub fn sub(&self, o: &Quantity) -> Quantity {
        self.add(&Quantity { mantissa: -o.mantissa, ..*o })
    }

    /// Compares the values (formats do not matter).
    pub fn cmp_value(&self, o: &Quantity) -> std::cmp::Ordering {
        match self.aligned(o) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.as_f64().partial_cmp(&o.as_f64()).unwrap_or(std::cmp::Ordering::Equal),
        }
    }
}

/// The canonical form of a quantity value, or None when it does not parse.
pub fn canonical(v: &Value) -> Option<String> {
    Quantity::from_json(v).map(|q| q.canonical())
}

/// Rewrites a quantity value in place to its canonical text (invalid text is left for
/// validation to report).
pub fn canonicalize(v: &mut Value) {
    if let Some(c) = canonical(v) {
        *v = Value::String(c);
    }
}

/// `SetDefaults_ResourceList`: every value rounded up to milli-units, then canonical.
pub fn default_resource_list(list: &mut Value) {
    if let Some(m) = list.as_object_mut() {
        for v in m.values_mut() {
            if let Some(q) = Quantity::from_json(v) {
                *v = Value::String(q.round_up(-3).canonical());
            }
        }
    }
}

/// Every value of a resource list in canonical text (lists that are not defaulted upstream,
/// such as a ResourceQuota's `hard`, are still re-encoded canonically).
pub fn canonicalize_list(list: &mut Value) {
    if let Some(m) = list.as_object_mut() {
        m.values_mut().for_each(canonicalize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(s: &str) -> String {
        Quantity::parse(s).unwrap().canonical()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        for (input, want) in [
            ("1000m", "1"), ("1500m", "1500m"), ("0.5", "500m"), ("1.5k", "1500"), ("100M", "100M"),
            ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"), ("0.5Gi", "512Mi"),
            ("512", "512"), ("0.5Ki", "512"), ("1e3", "1e3"), ("12e6", "12e6"), ("1E3", "1e3"), ("0", "0"),
            ("0.0", "0"), ("128974848", "128974848"), ("129e6", "129e6"), ("129M", "129M"), ("123Mi", "123Mi"),
            ("1.1Gi", "1181116006400m"), ("100m", "100m"), ("0.1", "100m"), ("2000", "2k"), ("-1", "-1"), ("1Ki", "1Ki"),
        ] {
            assert_eq!(c(input), want, "{input}");
        }
        assert_eq!(canonical(&json!(2)), Some("2".into()));
        assert_eq!(canonical(&json!(0.25)), Some("250m".into()));
        assert!(Quantity::parse("1Gb").is_none() && Quantity::parse("abc").is_none() && Quantity::parse("").is_none());
    }

    #[test]
    fn arithmetic_keeps_the_left_format() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert_eq!(q("64Mi").add(&q("64Mi")).canonical(), "128Mi");
        assert_eq!(q("100m").add(&q("1")).canonical(), "1100m");
        assert_eq!(Quantity::zero().add(&q("1Gi")).canonical(), "1Gi");
        assert_eq!(q("2").sub(&q("500m")).canonical(), "1500m");
        assert_eq!(q("1Gi").sub(&q("1Gi")).canonical(), "0");
        assert_eq!(q("1").cmp_value(&q("1000m")), std::cmp::Ordering::Equal);
        assert_eq!(q("1Ki").cmp_value(&q("1k")), std::cmp::Ordering::Greater);
        assert_eq!(Quantity::from_i64(3).canonical(), "3");
    }

    #[test]
    fn resource_lists_round_up_to_milli() {
        let mut l = json!({"cpu": "0.0001", "memory": "64Mi", "nvidia.com/gpu": 1});
        default_resource_list(&mut l);
        assert_eq!(l, json!({"cpu": "1m", "memory": "64Mi", "nvidia.com/gpu": "1"}));
        assert_eq!(c("1n"), "1n");
        assert_eq!(c("0.1n"), "1n");
    }
}
