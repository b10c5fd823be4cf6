//! The Kubernetes CEL libraries CRD rules may use, on top of the `cel` crate's standard library
//! and its strings and lists extensions: `sets` (cel-go's ext.Sets), lists (`isSorted`, `sum`,
//! `min`, `max`, `indexOf`, `lastIndexOf`), regex (`find`, `findAll`), URLs, quantities, IPs and
//! CIDRs, as in `k8s.io/apiserver/pkg/cel/library`.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use cel::common::types::{Type, DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::objects::{Key, Map, Opaque};
use cel::{Env, ExecutionError, Value};

use super::super::formats::{parse_cidr, parse_go_ip};
use crate::registry::quantity::Quantity;

type R = Result<Value, ExecutionError>;

fn vals(a: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    a.iter().map(|v| Value::try_from(&**v)).collect()
}

fn out<'b, 'v>(v: Value) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let b: Box<dyn Val> = Box::<dyn Val>::try_from(v)?;
    Ok(CowVal::from(b as Box<dyn Val + 'v>))
}

fn err(f: &str, m: impl ToString) -> ExecutionError {
    ExecutionError::function_error(f, m)
}

macro_rules! ov {
    ($name:ident, |$a:ident| $body:expr) => {
        fn $name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
            let $a: Vec<Value> = vals(&args)?;
            let r: R = $body;
            out(r?)
        }
    };
}

fn opaque<T: 'static>(v: &Value) -> Option<&T> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<T>(),
        _ => None,
    }
}

fn string_arg(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

// ---- quantities ----

/// A `resource.Quantity` as a CEL value.
#[derive(Debug, Clone)]
pub struct QuantityVal(pub Quantity);

impl PartialEq for QuantityVal {
    fn eq(&self, o: &Self) -> bool {
        qcmp(&self.0, &o.0) == Ordering::Equal
    }
}
impl Eq for QuantityVal {}
impl Opaque for QuantityVal {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Quantity"
    }
}

fn scaled(q: &Quantity, e: i32) -> Option<i128> {
    q.mantissa.checked_mul(10i128.checked_pow((q.exp - e) as u32)?)
}

fn approx(q: &Quantity) -> f64 {
    q.mantissa as f64 * 10f64.powi(q.exp)
}

fn qcmp(a: &Quantity, b: &Quantity) -> Ordering {
    let e = a.exp.min(b.exp);
    match (scaled(a, e), scaled(b, e)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => approx(a).partial_cmp(&approx(b)).unwrap_or(Ordering::Equal),
    }
}

fn as_integer(q: &Quantity) -> Option<i64> {
    let v = if q.exp >= 0 {
        scaled(q, 0)?
    } else {
        let d = 10i128.checked_pow((-q.exp) as u32)?;
        if q.mantissa % d != 0 {
            return None;
        }
        q.mantissa / d
    };
    i64::try_from(v).ok()
}

fn quantity_of(f: &str, v: &Value) -> Result<Quantity, ExecutionError> {
    match v {
        Value::Int(i) => Ok(Quantity::from_i64(*i)),
        _ => opaque::<QuantityVal>(v).map(|q| q.0).ok_or_else(|| err(f, "expected a quantity")),
    }
}

fn qval(q: Quantity) -> Value {
    Value::Opaque(Arc::new(QuantityVal(q)))
}

ov!(quantity_fn, |a| {
    let s = string_arg(&a[0]).unwrap_or("");
    match Quantity::parse(s) {
        Some(q) if s.trim() == s => Ok(qval(q)),
        _ => Err(err("quantity", "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")),
    }
});
ov!(is_quantity, |a| Ok(Value::Bool(string_arg(&a[0]).is_some_and(|s| s.trim() == s && Quantity::parse(s).is_some()))));
ov!(q_sign, |a| Ok(Value::Int(quantity_of("sign", &a[0])?.signum() as i64)));
ov!(q_is_integer, |a| Ok(Value::Bool(as_integer(&quantity_of("isInteger", &a[0])?).is_some())));
ov!(q_as_integer, |a| as_integer(&quantity_of("asInteger", &a[0])?).map(Value::Int).ok_or_else(|| err("asInteger", "cannot convert value to integer")));
ov!(q_as_float, |a| Ok(Value::Float(approx(&quantity_of("asApproximateFloat", &a[0])?))));
ov!(q_add, |a| Ok(qval(quantity_of("add", &a[0])?.add(&quantity_of("add", &a[1])?))));
ov!(q_sub, |a| {
    let b = quantity_of("sub", &a[1])?;
    Ok(qval(quantity_of("sub", &a[0])?.add(&Quantity { mantissa: -b.mantissa, ..b })))
});
ov!(q_gt, |a| Ok(Value::Bool(qcmp(&quantity_of("isGreaterThan", &a[0])?, &quantity_of("isGreaterThan", &a[1])?) == Ordering::Greater)));
ov!(q_lt, |a| Ok(Value::Bool(qcmp(&quantity_of("isLessThan", &a[0])?, &quantity_of("isLessThan", &a[1])?) == Ordering::Less)));
ov!(q_cmp, |a| Ok(Value::Int(match qcmp(&quantity_of("compareTo", &a[0])?, &quantity_of("compareTo", &a[1])?) {
    Ordering::Less => -1,
    Ordering::Equal => 0,
    Ordering::Greater => 1,
})));

// ---- IPs and CIDRs ----

/// An IP address as a CEL value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpVal(pub IpAddr);
impl Opaque for IpVal {
    fn runtime_type_name(&self) -> &str {
        "net.IP"
    }
}

/// A CIDR as a CEL value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrVal(pub IpAddr, pub u8);
impl Opaque for CidrVal {
    fn runtime_type_name(&self) -> &str {
        "net.CIDR"
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    match parse_go_ip(s) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() && s.contains('.') => Err("IPv4-mapped IPv6 addresses are not allowed".into()),
        Some(ip) => Ok(ip),
        None => Err(format!("ParseAddr({}): unable to parse IP", crate::api::gofmt::quote(s))),
    }
}

fn ip_of(f: &str, v: &Value) -> Result<IpAddr, ExecutionError> {
    match v {
        Value::String(s) => parse_ip(s).map_err(|e| err(f, e)),
        _ => opaque::<IpVal>(v).map(|i| i.0).ok_or_else(|| err(f, "expected an IP")),
    }
}

fn cidr_of(f: &str, v: &Value) -> Result<(IpAddr, u8), ExecutionError> {
    match v {
        Value::String(s) => parse_cidr(s).ok_or_else(|| err(f, format!("network address parse error during conversion from string: {s}"))),
        _ => opaque::<CidrVal>(v).map(|c| (c.0, c.1)).ok_or_else(|| err(f, "expected a CIDR")),
    }
}

fn mask(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v) => {
            let m = if bits == 0 { 0 } else { u32::MAX << (32 - bits as u32) };
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let m = if bits == 0 { 0 } else { u128::MAX << (128 - bits as u32) };
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

fn contains(c: (IpAddr, u8), ip: IpAddr) -> bool {
    c.0.is_ipv4() == ip.is_ipv4() && mask(c.0, c.1) == mask(ip, c.1)
}

ov!(ip_fn, |a| Ok(Value::Opaque(Arc::new(IpVal(ip_of("ip", &a[0])?)))));
ov!(is_ip, |a| Ok(Value::Bool(string_arg(&a[0]).is_some_and(|s| parse_ip(s).is_ok()))));
ov!(ip_is_canonical, |a| {
    let s = string_arg(&a[0]).unwrap_or("");
    let ip = ip_of("ip.isCanonical", &a[0])?;
    Ok(Value::Bool(ip.to_string() == s))
});
ov!(ip_family, |a| Ok(Value::Int(if ip_of("family", &a[0])?.is_ipv4() { 4 } else { 6 })));
ov!(ip_unspecified, |a| Ok(Value::Bool(ip_of("isUnspecified", &a[0])?.is_unspecified())));
ov!(ip_loopback, |a| Ok(Value::Bool(ip_of("isLoopback", &a[0])?.is_loopback())));
ov!(ip_ll_multicast, |a| Ok(Value::Bool(match ip_of("isLinkLocalMulticast", &a[0])? {
    IpAddr::V4(v) => v.octets()[..3] == [224, 0, 0],
    IpAddr::V6(v) => v.segments()[0] & 0xff0f == 0xff02,
})));
ov!(ip_ll_unicast, |a| Ok(Value::Bool(match ip_of("isLinkLocalUnicast", &a[0])? {
    IpAddr::V4(v) => v.is_link_local(),
    IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
})));
ov!(ip_global_unicast, |a| Ok(Value::Bool(match ip_of("isGlobalUnicast", &a[0])? {
    IpAddr::V4(v) => !(v.is_unspecified() || v.is_loopback() || v.is_multicast() || v.is_link_local() || v.is_broadcast()),
    IpAddr::V6(v) => !(v.is_unspecified() || v.is_loopback() || v.is_multicast() || v.segments()[0] & 0xffc0 == 0xfe80),
})));
ov!(cidr_fn, |a| {
    let (ip, n) = cidr_of("cidr", &a[0])?;
    Ok(Value::Opaque(Arc::new(CidrVal(ip, n))))
});
ov!(is_cidr, |a| Ok(Value::Bool(string_arg(&a[0]).is_some_and(|s| parse_cidr(s).is_some()))));
ov!(cidr_contains_ip, |a| Ok(Value::Bool(contains(cidr_of("containsIP", &a[0])?, ip_of("containsIP", &a[1])?))));
ov!(cidr_contains_cidr, |a| {
    let outer = cidr_of("containsCIDR", &a[0])?;
    let inner = cidr_of("containsCIDR", &a[1])?;
    Ok(Value::Bool(inner.1 >= outer.1 && contains(outer, inner.0)))
});
ov!(cidr_ip, |a| Ok(Value::Opaque(Arc::new(IpVal(cidr_of("ip", &a[0])?.0)))));
ov!(cidr_masked, |a| {
    let (ip, n) = cidr_of("masked", &a[0])?;
    Ok(Value::Opaque(Arc::new(CidrVal(mask(ip, n), n))))
});
ov!(cidr_prefix, |a| Ok(Value::Int(cidr_of("prefixLength", &a[0])?.1 as i64)));
ov!(net_string, |a| {
    if let Some(ip) = opaque::<IpVal>(&a[0]) {
        return out(Value::String(Arc::new(ip.0.to_string())));
    }
    if let Some(c) = opaque::<CidrVal>(&a[0]) {
        return out(Value::String(Arc::new(format!("{}/{}", c.0, c.1))));
    }
    if let Some(u) = opaque::<UrlVal>(&a[0]) {
        return out(Value::String(Arc::new(u.raw.clone())));
    }
    Err(err("string", "unsupported type"))
});

// ---- URLs ----

/// A parsed URL (`url.ParseRequestURI`) as a CEL value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlVal {
    raw: String,
    scheme: String,
    host: String,
    path: String,
    query: String,
}
impl Opaque for UrlVal {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.URL"
    }
}

fn parse_url(s: &str) -> Option<UrlVal> {
    if !super::super::formats::validates("uri", s) {
        return None;
    }
    let (scheme, rest) = match s.split_once(':') {
        Some((sc, r)) if !sc.is_empty() && sc.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && !sc.contains('/') => (sc.to_string(), r),
        _ => (String::new(), s),
    };
    let (rest, query) = rest.split_once('?').map(|(a, b)| (a, b.to_string())).unwrap_or((rest, String::new()));
    let (host, path) = match rest.strip_prefix("//") {
        Some(after) if !scheme.is_empty() => {
            let end = after.find('/').unwrap_or(after.len());
            let auth = &after[..end];
            (auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth).to_string(), after[end..].to_string())
        }
        _ => (String::new(), rest.to_string()),
    };
    Some(UrlVal { raw: s.to_string(), scheme, host, path, query })
}

fn url_of(f: &str, v: &Value) -> Result<UrlVal, ExecutionError> {
    opaque::<UrlVal>(v).cloned().ok_or_else(|| err(f, "expected a URL"))
}

fn host_split(h: &str) -> (String, String) {
    if let Some(rest) = h.strip_prefix('[') {
        let end = rest.find(']').unwrap_or(rest.len());
        let port = rest[end..].strip_prefix("]:").unwrap_or("").to_string();
        return (rest[..end].to_string(), port);
    }
    match h.rsplit_once(':') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (h.to_string(), String::new()),
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::String(Arc::new(v.into()))
}

ov!(url_fn, |a| {
    let raw = string_arg(&a[0]).unwrap_or("");
    parse_url(raw)
        .map(|u| Value::Opaque(Arc::new(u)))
        .ok_or_else(|| err("url", format!("URL {} parse error during conversion from string", crate::api::gofmt::quote(raw))))
});
ov!(is_url, |a| Ok(Value::Bool(string_arg(&a[0]).and_then(parse_url).is_some())));
ov!(url_scheme, |a| Ok(s(url_of("getScheme", &a[0])?.scheme)));
ov!(url_host, |a| Ok(s(url_of("getHost", &a[0])?.host)));
ov!(url_hostname, |a| Ok(s(host_split(&url_of("getHostname", &a[0])?.host).0)));
ov!(url_port, |a| Ok(s(host_split(&url_of("getPort", &a[0])?.host).1)));
ov!(url_path, |a| Ok(s(url_of("getEscapedPath", &a[0])?.path)));
ov!(url_query, |a| {
    let q = url_of("getQuery", &a[0])?.query;
    let mut m: std::collections::HashMap<Key, Vec<Value>> = std::collections::HashMap::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        m.entry(Key::String(Arc::new(k.to_string()))).or_default().push(s(v));
    }
    Ok(Value::Map(Map { map: Arc::new(m.into_iter().map(|(k, v)| (k, Value::List(Arc::new(v)))).collect()) }))
});

// ---- lists ----

fn list(f: &str, v: &Value) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        _ => Err(err(f, "expected a list")),
    }
}

fn vcmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Opaque(_), Value::Opaque(_)) => match (opaque::<QuantityVal>(a), opaque::<QuantityVal>(b)) {
            (Some(x), Some(y)) => Some(qcmp(&x.0, &y.0)),
            _ => None,
        },
        _ => a.partial_cmp(b),
    }
}

ov!(l_is_sorted, |a| {
    let l = list("isSorted", &a[0])?;
    Ok(Value::Bool(l.windows(2).all(|w| vcmp(&w[0], &w[1]).is_some_and(|o| o != Ordering::Greater))))
});
ov!(l_sum, |a| {
    let l = list("sum", &a[0])?;
    let mut acc: Option<Value> = None;
    for x in l.iter() {
        acc = Some(match (acc, x) {
            (None, x) => x.clone(),
            (Some(Value::Int(p)), Value::Int(q)) => Value::Int(p.checked_add(*q).ok_or_else(|| err("sum", "integer overflow"))?),
            (Some(Value::UInt(p)), Value::UInt(q)) => Value::UInt(p.checked_add(*q).ok_or_else(|| err("sum", "unsigned integer overflow"))?),
            (Some(Value::Float(p)), Value::Float(q)) => Value::Float(p + q),
            (Some(Value::Duration(p)), Value::Duration(q)) => Value::Duration(p + *q),
            (Some(p), _) => return Err(err("sum", format!("no such overload: {p:?}"))),
        });
    }
    Ok(acc.unwrap_or(Value::Int(0)))
});
fn extreme(f: &str, v: &Value, want: Ordering) -> R {
    let l = list(f, v)?;
    let mut best: Option<&Value> = None;
    for x in l.iter() {
        best = match best {
            None => Some(x),
            Some(b) => match vcmp(x, b) {
                Some(o) if o == want => Some(x),
                Some(_) => Some(b),
                None => return Err(err(f, "values are not comparable")),
            },
        };
    }
    best.cloned().ok_or_else(|| err(f, format!("{f} called on empty list")))
}
ov!(l_min, |a| extreme("min", &a[0], Ordering::Less));
ov!(l_max, |a| extreme("max", &a[0], Ordering::Greater));
ov!(l_index_of, |a| Ok(Value::Int(list("indexOf", &a[0])?.iter().position(|x| x == &a[1]).map(|i| i as i64).unwrap_or(-1))));
ov!(l_last_index_of, |a| Ok(Value::Int(list("lastIndexOf", &a[0])?.iter().rposition(|x| x == &a[1]).map(|i| i as i64).unwrap_or(-1))));

// ---- sets (cel-go ext.Sets) ----

ov!(sets_contains, |a| {
    let (x, y) = (list("sets.contains", &a[0])?, list("sets.contains", &a[1])?);
    Ok(Value::Bool(y.iter().all(|e| x.contains(e))))
});
ov!(sets_equivalent, |a| {
    let (x, y) = (list("sets.equivalent", &a[0])?, list("sets.equivalent", &a[1])?);
    Ok(Value::Bool(y.iter().all(|e| x.contains(e)) && x.iter().all(|e| y.contains(e))))
});
ov!(sets_intersects, |a| {
    let (x, y) = (list("sets.intersects", &a[0])?, list("sets.intersects", &a[1])?);
    Ok(Value::Bool(y.iter().any(|e| x.contains(e))))
});

// ---- regex ----

fn regex_of(f: &str, v: &Value) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(string_arg(v).unwrap_or("")).map_err(|e| err(f, e))
}
ov!(re_find, |a| {
    let re = regex_of("find", &a[1])?;
    Ok(s(re.find(string_arg(&a[0]).unwrap_or("")).map(|m| m.as_str()).unwrap_or("")))
});
ov!(re_find_all, |a| {
    let re = regex_of("findAll", &a[1])?;
    let limit = match a.get(2) {
        Some(Value::Int(n)) if *n >= 0 => *n as usize,
        _ => usize::MAX,
    };
    Ok(Value::List(Arc::new(re.find_iter(string_arg(&a[0]).unwrap_or("")).take(limit).map(|m| s(m.as_str())).collect())))
});

/// The names of the functions and namespaces this library adds (for the compile-time check).
pub const FUNCTIONS: &[&str] = &[
    "quantity",
    "isQuantity",
    "sign",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "add",
    "sub",
    "isGreaterThan",
    "isLessThan",
    "compareTo",
    "ip",
    "isIP",
    "ip.isCanonical",
    "family",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    "cidr",
    "isCIDR",
    "containsIP",
    "containsCIDR",
    "masked",
    "prefixLength",
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    "isSorted",
    "sum",
    "min",
    "max",
    "indexOf",
    "lastIndexOf",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "find",
    "findAll",
];

/// The environment rules are compiled and run in, built once.
pub static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(build().expect("CEL environment")));

fn build() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_extension(cel::extensions::lists)?;
    let d = || DYN_TYPE;
    let glob: Vec<(&str, &str, Vec<Type>, cel::common::functions::Function)> = vec![
        ("quantity", "quantity_string", vec![STRING_TYPE], quantity_fn),
        ("isQuantity", "isQuantity_string", vec![STRING_TYPE], is_quantity),
        ("ip", "ip_string", vec![STRING_TYPE], ip_fn),
        ("isIP", "isIP_string", vec![STRING_TYPE], is_ip),
        ("ip.isCanonical", "ip_isCanonical_string", vec![STRING_TYPE], ip_is_canonical),
        ("cidr", "cidr_string", vec![STRING_TYPE], cidr_fn),
        ("isCIDR", "isCIDR_string", vec![STRING_TYPE], is_cidr),
        ("url", "url_string", vec![STRING_TYPE], url_fn),
        ("isURL", "isURL_string", vec![STRING_TYPE], is_url),
        ("sets.contains", "sets_contains", vec![LIST_TYPE, LIST_TYPE], sets_contains),
        ("sets.equivalent", "sets_equivalent", vec![LIST_TYPE, LIST_TYPE], sets_equivalent),
        ("sets.intersects", "sets_intersects", vec![LIST_TYPE, LIST_TYPE], sets_intersects),
    ];
    for (name, id, args, f) in glob {
        env.add_overload(name, id, args, f)?;
    }
    // `string(ip)`, `string(cidr)`, `string(url)`: after the standard overloads, so they win.
    let _ = env.add_overload("string", "string_kubernetes_opaque", vec![d()], net_string);
    let member: Vec<(&str, &str, Type, Vec<Type>, cel::common::functions::Function)> = vec![
        ("sign", "quantity_sign", d(), vec![], q_sign),
        ("isInteger", "quantity_isInteger", d(), vec![], q_is_integer),
        ("asInteger", "quantity_asInteger", d(), vec![], q_as_integer),
        ("asApproximateFloat", "quantity_asApproximateFloat", d(), vec![], q_as_float),
        ("add", "quantity_add", d(), vec![d()], q_add),
        ("sub", "quantity_sub", d(), vec![d()], q_sub),
        ("isGreaterThan", "quantity_isGreaterThan", d(), vec![d()], q_gt),
        ("isLessThan", "quantity_isLessThan", d(), vec![d()], q_lt),
        ("compareTo", "quantity_compareTo", d(), vec![d()], q_cmp),
        ("family", "ip_family", d(), vec![], ip_family),
        ("isUnspecified", "ip_isUnspecified", d(), vec![], ip_unspecified),
        ("isLoopback", "ip_isLoopback", d(), vec![], ip_loopback),
        ("isLinkLocalMulticast", "ip_isLinkLocalMulticast", d(), vec![], ip_ll_multicast),
        ("isLinkLocalUnicast", "ip_isLinkLocalUnicast", d(), vec![], ip_ll_unicast),
        ("isGlobalUnicast", "ip_isGlobalUnicast", d(), vec![], ip_global_unicast),
        ("containsIP", "cidr_containsIP", d(), vec![d()], cidr_contains_ip),
        ("containsCIDR", "cidr_containsCIDR", d(), vec![d()], cidr_contains_cidr),
        ("ip", "cidr_ip", d(), vec![], cidr_ip),
        ("masked", "cidr_masked", d(), vec![], cidr_masked),
        ("prefixLength", "cidr_prefixLength", d(), vec![], cidr_prefix),
        ("getScheme", "url_getScheme", d(), vec![], url_scheme),
        ("getHost", "url_getHost", d(), vec![], url_host),
        ("getHostname", "url_getHostname", d(), vec![], url_hostname),
        ("getPort", "url_getPort", d(), vec![], url_port),
        ("getEscapedPath", "url_getEscapedPath", d(), vec![], url_path),
        ("getQuery", "url_getQuery", d(), vec![], url_query),
        ("isSorted", "list_isSorted", LIST_TYPE, vec![], l_is_sorted),
        ("sum", "list_sum", LIST_TYPE, vec![], l_sum),
        ("min", "list_min", LIST_TYPE, vec![], l_min),
        ("max", "list_max", LIST_TYPE, vec![], l_max),
        ("indexOf", "list_indexOf", LIST_TYPE, vec![d()], l_index_of),
        ("lastIndexOf", "list_lastIndexOf", LIST_TYPE, vec![d()], l_last_index_of),
        ("find", "string_find", STRING_TYPE, vec![STRING_TYPE], re_find),
        ("findAll", "string_findAll", STRING_TYPE, vec![STRING_TYPE], re_find_all),
        ("findAll", "string_findAll_int", STRING_TYPE, vec![STRING_TYPE, INT_TYPE], re_find_all),
    ];
    for (name, id, target, args, f) in member {
        env.add_member_overload(name, id, target, args, f)?;
    }
    Ok(env)
}
