//! String formats as kube-openapi's `strfmt.Default` registry checks them, limited to the
//! formats apiextensions supports in CRD schemas (`supportedVersionedFormats`, 1.33); other
//! formats are ignored, as upstream strips them from the schema before validating.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

use crate::registry::quantity::Quantity;

/// The formats a CRD schema's string may carry (normalized: without dashes).
const SUPPORTED: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "quantity",
];

fn normalize(format: &str) -> String {
    format.replace('-', "")
}

/// Whether upstream validates strings of this format.
pub fn is_supported(format: &str) -> bool {
    SUPPORTED.contains(&normalize(format).as_str())
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("built-in pattern")
}

static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z0-9\p{S}\p{L}])(-?[a-zA-Z0-9\p{S}\p{L}]){1,62})$",
    )
});
static UUID: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID3: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID4: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
static UUID5: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
static CREDIT_CARD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$",
    )
});
static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"));
static HEXCOLOR: LazyLock<Regex> = LazyLock::new(|| re(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGBCOLOR: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$")
});
static BASE64: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"));
static DATETIME_TIME: LazyLock<Regex> = LazyLock::new(|| re(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"));
static SCALA_DURATION: LazyLock<Regex> = LazyLock::new(|| re(r"(\d+)\s*([A-Za-zµ]+)"));

/// Whether `s` is valid for `format` (a supported format; others always pass).
pub fn validates(format: &str, s: &str) -> bool {
    match normalize(format).as_str() {
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_request_uri(s),
        "email" => is_email(s),
        "hostname" => is_hostname(s),
        "ipv4" => parse_go_ip(s).is_some() && s.contains('.'),
        "ipv6" => parse_go_ip(s).is_some() && s.contains(':'),
        "cidr" => parse_cidr(s).is_some(),
        "mac" => is_mac(s),
        "uuid" => UUID.is_match(s),
        "uuid3" => UUID3.is_match(s),
        "uuid4" => UUID4.is_match(s),
        "uuid5" => UUID5.is_match(s),
        "isbn" => is_isbn10(s) || is_isbn13(s),
        "isbn10" => is_isbn10(s),
        "isbn13" => is_isbn13(s),
        "creditcard" => is_credit_card(s),
        "ssn" => SSN.is_match(s),
        "hexcolor" => HEXCOLOR.is_match(s),
        "rgbcolor" => RGBCOLOR.is_match(s),
        "byte" => BASE64.is_match(s),
        "password" => true,
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "duration" => is_duration(s),
        "quantity" => Quantity::parse(s).is_some() && !s.trim().is_empty() && s.trim() == s,
        _ => true,
    }
}

fn is_hostname(s: &str) -> bool {
    HOSTNAME.is_match(s) && s.len() <= 255 && s.split('.').all(|p| p.len() <= 63)
}

/// Go's `net.ParseIP`: dotted IPv4 (no leading zeros), IPv6 (with embedded IPv4), no zones.
pub fn parse_go_ip(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// Go's `net.ParseCIDR`: an address and a decimal prefix length within its family.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip = parse_go_ip(ip)?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) || (bits.len() > 1 && bits.starts_with('0')) {
        return None;
    }
    let n: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (n <= max).then_some((ip, n))
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `aa:bb`, `aa-bb` or `aabb.ccdd`.
fn is_mac(s: &str) -> bool {
    let octets = |groups: Vec<&str>, width: usize| groups.iter().all(|g| g.len() == width && g.bytes().all(|b| b.is_ascii_hexdigit()));
    let ok_len = |n: usize| n == 6 || n == 8 || n == 20;
    if s.len() < 14 {
        return false;
    }
    if s.as_bytes()[2] == b':' || s.as_bytes()[2] == b'-' {
        let sep = s.as_bytes()[2] as char;
        let groups: Vec<&str> = s.split(sep).collect();
        return ok_len(groups.len()) && octets(groups, 2);
    }
    if s.as_bytes()[4] == b'.' {
        let groups: Vec<&str> = s.split('.').collect();
        return ok_len(groups.len() * 2) && octets(groups, 4);
    }
    false
}

fn isbn_clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
}

fn is_isbn10(s: &str) -> bool {
    let s = isbn_clean(s);
    let b = s.as_bytes();
    if b.len() != 10 || !b[..9].iter().all(|c| c.is_ascii_digit()) || !(b[9].is_ascii_digit() || b[9] == b'X') {
        return false;
    }
    let sum: u32 = b.iter().enumerate().map(|(i, c)| (10 - i as u32) * if *c == b'X' { 10 } else { (c - b'0') as u32 }).sum();
    sum.is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let s = isbn_clean(s);
    let b = s.as_bytes();
    if b.len() != 13 || !b.iter().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = b[..12].iter().enumerate().map(|(i, c)| (c - b'0') as u32 * if i % 2 == 0 { 1 } else { 3 }).sum();
    (10 - sum % 10) % 10 == (b[12] - b'0') as u32
}

fn is_credit_card(s: &str) -> bool {
    let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if !CREDIT_CARD.is_match(&s) {
        return false;
    }
    let mut sum = 0;
    let mut double = false;
    for c in s.bytes().rev() {
        let mut d = (c - b'0') as u32;
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum % 10 == 0
}

/// `time.Parse("2006-01-02", s)`.
pub fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-'
}

/// strfmt's `IsDateTime`: a date, `t`, and `hh:mm:ss[.frac](z|±hh:mm)`, case-insensitive.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    match DATETIME_TIME.captures(parts[1]) {
        Some(c) => &c[1] <= "23" && &c[2] <= "59" && &c[3] <= "59",
        None => false,
    }
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num.parse::<f64>().ok()? * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i128) } else { total as i128 })
}

/// strfmt's `ParseDuration`: Go durations, else any `<n> <unit>` parts with long unit names.
fn is_duration(s: &str) -> bool {
    if parse_go_duration(s).is_some() {
        return true;
    }
    let mut any = false;
    for c in SCALA_DURATION.captures_iter(s) {
        let unit = c[2].trim().to_lowercase();
        let known = matches!(
            unit.as_str(),
            "ns" | "nano"
                | "nanos"
                | "nanosecond"
                | "nanoseconds"
                | "us"
                | "µs"
                | "micro"
                | "micros"
                | "microsecond"
                | "microseconds"
                | "ms"
                | "milli"
                | "millis"
                | "millisecond"
                | "milliseconds"
                | "s"
                | "sec"
                | "secs"
                | "second"
                | "seconds"
                | "m"
                | "min"
                | "mins"
                | "minute"
                | "minutes"
                | "h"
                | "hr"
                | "hrs"
                | "hour"
                | "hours"
                | "d"
                | "day"
                | "days"
                | "w"
                | "wk"
                | "wks"
                | "week"
                | "weeks"
        );
        if !known || c[1].parse::<i64>().is_err() {
            return false;
        }
        any = true;
    }
    any
}

/// Go's `net/mail.ParseAddress` for the common forms: `local@domain` and `Name <local@domain>`.
fn is_email(s: &str) -> bool {
    let s = s.trim();
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        (None, false) => s,
        _ => return false,
    };
    let Some(at) = addr.rfind('@') else { return false };
    let (local, domain) = (&addr[..at], &addr[at + 1..]);
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let dot_atom = |p: &str| !p.is_empty() && p.split('.').all(|a| !a.is_empty() && a.chars().all(atext));
    let local_ok = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        local[1..local.len() - 1].chars().all(|c| c != '"' && c != '\\' && !c.is_control())
    } else {
        dot_atom(local)
    };
    let domain_ok = if domain.starts_with('[') && domain.ends_with(']') { domain.len() > 2 } else { dot_atom(domain) };
    local_ok && domain_ok
}

/// Go's `url.ParseRequestURI` succeeding: an absolute URI or an absolute path.
fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if s == "*" {
        return true;
    }
    // Scheme: a letter, then letters, digits, `+-.`, up to a colon.
    let mut scheme = "";
    let mut rest = s;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if i > 0 && (c.is_ascii_digit() || c == '+' || c == '-' || c == '.') {
            continue;
        }
        if c == ':' {
            if i == 0 {
                return false;
            }
            scheme = &s[..i];
            rest = &s[i + 1..];
        }
        break;
    }
    let rest = rest.split_once('?').map(|(a, _)| a).unwrap_or(rest);
    if !rest.starts_with('/') {
        return !scheme.is_empty();
    }
    let path = if !scheme.is_empty() && rest.starts_with("//") {
        let after = &rest[2..];
        let end = after.find('/').unwrap_or(after.len());
        if !authority_ok(&after[..end]) {
            return false;
        }
        &after[end..]
    } else {
        rest
    };
    escapes_ok(path)
}

fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !b.get(i + 1).is_some_and(|c| c.is_ascii_hexdigit()) || !b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn authority_ok(auth: &str) -> bool {
    let host = match auth.rfind('@') {
        Some(i) => {
            let user = &auth[..i];
            if !user.chars().all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c)) {
                return false;
            }
            &auth[i + 1..]
        }
        None => auth,
    };
    let (hostname, port) = if let Some(stripped) = host.strip_prefix('[') {
        let Some(end) = stripped.find(']') else { return false };
        (&stripped[..end], &stripped[end + 1..])
    } else {
        match host.rfind(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    let port_ok = port.is_empty() || (port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return false;
    }
    escapes_ok(hostname) && hostname.chars().all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || "-_.~!$&'()*+,;=:[]<>\"%".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_accept_and_reject_as_strfmt() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("hostname", &["example.com", "a-b.co", "localhost"], &["-bad.com", "a..b", "a.b.c", ""]),
            ("ipv4", &["10.0.0.1", "::ffff:1.2.3.4"], &["10.0.0.256", "01.2.3.4", "::1"]),
            ("ipv6", &["::1", "fe80::1"], &["10.0.0.1", "::1%eth0"]),
            ("cidr", &["10.0.0.0/8", "fd00::/64"], &["10.0.0.0/33", "10.0.0.0", "10.0.0.0/08"]),
            ("mac", &["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e"], &["00:1a:2b:3c:4d", "zz:1a:2b:3c:4d:5e"]),
            ("email", &["a@b.c", "Jo <jo@example.com>"], &["a@", "@b", "a b@c"]),
            ("uri", &["https://example.com/x?y=1", "/abs/path", "mailto:a@b.c", "urn:isbn:123"], &["", "relative/path", "http://a b.com", "http://h:port/"]),
            ("uuid", &["123e4567-e89b-12d3-a456-426614174000", "123E4567E89B12D3A456426614174000"], &["123e4567-e89b-12d3-a456"]),
            ("uuid4", &["123e4567-e89b-42d3-a456-426614174000"], &["123e4567-e89b-12d3-a456-426614174000"]),
            ("byte", &["aGVsbG8=", "YWJj"], &["not base64!", ""]),
            ("date", &["2024-02-29"], &["2023-02-29", "2024-1-1"]),
            ("date-time", &["2024-01-02T03:04:05Z", "2024-01-02t03:04:05.123+01:00"], &["2024-01-02 03:04:05Z", "2024-01-02T25:00:00Z", "2024-01-02"]),
            ("duration", &["1h30m", "300ms", "-1.5h", "0", "3 days", "1 week 2 hours"], &["1x", "forever", ""]),
            ("quantity", &["1Gi", "500m", "1e3", "2"], &["1GB", "", "abc"]),
            ("isbn", &["0321751043", "978-0321751041"], &["0321751044"]),
            ("creditcard", &["4111 1111 1111 1111"], &["4111 1111 1111 1112"]),
            ("ssn", &["123-45-6789"], &["123456"]),
            ("hexcolor", &["#fff", "A0B0C0"], &["#ffff"]),
            ("rgbcolor", &["rgb(0, 128, 255)"], &["rgb(256,0,0)"]),
            ("bsonobjectid", &["507f1f77bcf86cd799439011"], &["507f1f77bcf86cd79943901"]),
            ("password", &["anything"], &[]),
        ];
        for (format, good, bad) in cases {
            assert!(is_supported(format), "{format}");
            for s in *good {
                assert!(validates(format, s), "{format} should accept {s:?}");
            }
            for s in *bad {
                assert!(!validates(format, s), "{format} should reject {s:?}");
            }
        }
        assert!(!is_supported("int32"));
        assert!(!is_supported("k8s-short-name"), "introduced in 1.34");
    }
}
