//! Service ClusterIP and NodePort allocation from configured ranges.
//!
//! What is in use is read from the services watch cache (so a crash loses nothing), plus a small
//! set of addresses handed out whose services are not yet visible in the cache, so two concurrent
//! creates never get the same address.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use parking_lot::Mutex;
use rand::Rng;

/// Allocator for one tenant's service ranges.
pub struct Allocator {
    base: u32,
    size: u32,
    pub node_port_min: u16,
    pub node_port_max: u16,
    pending_ips: Mutex<HashSet<Ipv4Addr>>,
    pending_ports: Mutex<HashSet<u16>>,
}

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, bits) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    (bits <= 30).then_some((ip, bits))
}

impl Allocator {
    pub fn new(service_cidr: &str, node_ports: (u16, u16)) -> Option<Allocator> {
        let (ip, bits) = parse_cidr(service_cidr)?;
        let size = 1u32 << (32 - bits);
        let base = u32::from(ip) & !(size - 1);
        Some(Allocator {
            base,
            size,
            node_port_min: node_ports.0,
            node_port_max: node_ports.1,
            pending_ips: Mutex::new(HashSet::new()),
            pending_ports: Mutex::new(HashSet::new()),
        })
    }

    /// The address of the `kubernetes` service: the first usable address of the range.
    pub fn kubernetes_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        n > self.base && n < self.base + self.size - 1
    }

    pub fn range_string(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.base), 32 - self.size.trailing_zeros())
    }

    /// Picks a free address; `used` are the ones services hold now.
    pub fn allocate_ip(&self, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let mut pending = self.pending_ips.lock();
        let usable = self.size - 2;
        let start = rand::thread_rng().gen_range(0..usable);
        for i in 0..usable {
            let n = self.base + 1 + (start + i) % usable;
            let ip = Ipv4Addr::from(n);
            if ip == self.kubernetes_ip() || used.contains(&ip) || pending.contains(&ip) {
                continue;
            }
            pending.insert(ip);
            return Some(ip);
        }
        None
    }

    /// Claims a specific address; false when it is taken.
    pub fn claim_ip(&self, ip: Ipv4Addr, used: &HashSet<Ipv4Addr>) -> bool {
        let mut pending = self.pending_ips.lock();
        if used.contains(&ip) || pending.contains(&ip) {
            return false;
        }
        pending.insert(ip);
        true
    }

    pub fn release_ip(&self, ip: Ipv4Addr) {
        self.pending_ips.lock().remove(&ip);
    }

    pub fn allocate_port(&self, used: &HashSet<u16>) -> Option<u16> {
        let mut pending = self.pending_ports.lock();
        let span = (self.node_port_max - self.node_port_min) as u32 + 1;
        let start = rand::thread_rng().gen_range(0..span);
        for i in 0..span {
            let p = self.node_port_min + ((start + i) % span) as u16;
            if used.contains(&p) || pending.contains(&p) {
                continue;
            }
            pending.insert(p);
            return Some(p);
        }
        None
    }

    pub fn claim_port(&self, p: u16, used: &HashSet<u16>) -> bool {
        let mut pending = self.pending_ports.lock();
        if used.contains(&p) || pending.contains(&p) {
            return false;
        }
        pending.insert(p);
        true
    }

    pub fn release_port(&self, p: u16) {
        self.pending_ports.lock().remove(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_ips_inside_range() {
        let a = Allocator::new("10.96.0.0/28", (30000, 30002)).unwrap();
        let mut used = HashSet::new();
        for _ in 0..13 {
            let ip = a.allocate_ip(&used).unwrap();
            assert!(a.contains(ip));
            assert_ne!(ip, a.kubernetes_ip());
            assert!(used.insert(ip));
        }
        assert!(a.allocate_ip(&used).is_none());
        let p: HashSet<u16> = (0..3).map(|_| a.allocate_port(&HashSet::new()).unwrap()).collect();
        assert_eq!(p.len(), 3);
    }
}
