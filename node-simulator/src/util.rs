//! Small helpers: API timestamps, durations, deterministic fake digests and IDs.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in wall-clock time as the API shows it.
pub type Ts = DateTime<Utc>;

pub fn now() -> Ts {
    Utc::now()
}

/// `metav1.Time`: RFC 3339 in whole seconds.
pub fn time(t: Ts) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `metav1.MicroTime`: RFC 3339 with microseconds (a Lease's renewTime).
pub fn micro_time(t: Ts) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an API timestamp.
pub fn parse_time(s: &str) -> Option<Ts> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// A `metav1.Time` from a typed object as a [`Ts`].
pub fn ts(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Ts {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32).unwrap_or_default()
}

/// `300ms`, `5s`, `1.5s`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m or h)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// 64 hex digits derived from the parts (stands in for a sha256 content digest or a container
/// ID; stable within one build of the simulator, which is all that is needed).
pub fn hex64(parts: &[&str]) -> String {
    let mut out = String::with_capacity(64);
    for seed in 0u64..4 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        parts.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// A UUID-looking identifier derived from the parts (machineID, systemUUID, bootID).
pub fn uuid_from(parts: &[&str]) -> String {
    let h = hex64(parts);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// An image reference as containerd reports it: `nginx` is `docker.io/library/nginx:latest`.
pub fn normalize_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo, tag) = match last.rsplit_once(':') {
        Some((_, t)) => (&name[..name.len() - t.len() - 1], Some(t)),
        None => (name, None),
    };
    let first = repo.split('/').next().unwrap_or("");
    let has_registry = repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        repo.to_string()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    match (digest, tag) {
        (Some(d), _) => format!("{full}@{d}"),
        (None, Some(t)) => format!("{full}:{t}"),
        (None, None) => format!("{full}:latest"),
    }
}

/// The imageID containerd reports for an image: the repository at the image's digest.
pub fn image_id(image: &str) -> String {
    let norm = normalize_image(image);
    if norm.contains("@sha256:") {
        return norm;
    }
    let repo = match norm.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => r.to_string(),
        _ => norm.clone(),
    };
    format!("{repo}@sha256:{}", hex64(&["image", &norm]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_normalized_like_containerd() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize_image("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(normalize_image("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(normalize_image("registry.k8s.io/pause:3.10"), "registry.k8s.io/pause:3.10");
        assert_eq!(normalize_image("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normalize_image("localhost:5000/app:v1"), "localhost:5000/app:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(normalize_image(&format!("busybox@{d}")), format!("docker.io/library/busybox@{d}"));
        assert!(image_id("nginx").starts_with("docker.io/library/nginx@sha256:"));
        assert_eq!(image_id("nginx").len(), "docker.io/library/nginx@sha256:".len() + 64);
        assert!(image_id("localhost:5000/app").starts_with("localhost:5000/app@sha256:"));
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
        let t = parse_time("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(time(t), "2024-05-01T10:00:00Z");
        assert_eq!(micro_time(t), "2024-05-01T10:00:00.000000Z");
        assert_eq!(hex64(&["a"]).len(), 64);
        assert_ne!(hex64(&["a"]), hex64(&["b"]));
        assert_eq!(uuid_from(&["x"]).len(), 36);
    }
}
