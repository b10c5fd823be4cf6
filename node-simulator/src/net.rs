//! Addresses: each node's podCIDR carved out of `--pod-cidr-base` (as kube-controller-manager's
//! range allocator does with `--node-cidr-mask-size`), its InternalIP, and a per-node pod IP
//! allocator that hands out addresses in order after the last one, like the host-local IPAM
//! plugin, so a released address is not reused at once.

use std::net::Ipv4Addr;

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub bits: u8,
}

impl Cidr {
    /// Parses `10.244.0.0/16` (host bits must be zero).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, bits) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR (a.b.c.d/n)"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{s:?}: invalid IPv4 address"))?;
        let bits: u8 = bits.parse().ok().filter(|b| *b <= 32).ok_or_else(|| format!("{s:?}: invalid prefix length"))?;
        let base = u32::from(ip);
        let c = Cidr { base, bits };
        if base & !c.mask() != 0 {
            return Err(format!("{s:?}: host bits are set"));
        }
        Ok(c)
    }

    fn mask(&self) -> u32 {
        if self.bits == 0 {
            0
        } else {
            u32::MAX << (32 - self.bits)
        }
    }

    /// Addresses in the network.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.bits)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.base
    }

    /// The `i`th subnet of prefix length `bits`, if it fits.
    pub fn subnet(&self, bits: u8, i: u64) -> Option<Cidr> {
        if bits < self.bits || bits > 32 {
            return None;
        }
        let count = 1u64 << (bits - self.bits);
        (i < count).then(|| Cidr { base: self.base + (i << (32 - bits)) as u32, bits })
    }

    /// Which subnet of length `bits` this network is, if it is one of `self`.
    pub fn index_of(&self, sub: &Cidr) -> Option<u64> {
        (sub.bits >= self.bits && self.contains(Ipv4Addr::from(sub.base))).then(|| ((sub.base - self.base) as u64) >> (32 - sub.bits))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.bits)
    }
}

/// The InternalIP of the node whose podCIDR is subnet `index` of the pod network: 172.16.0.0/12
/// from .10 on, so it stays the same as long as the node keeps its podCIDR.
pub fn node_ip(index: u64) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 10)).wrapping_add(index as u32))
}

/// Pod addresses of one node's podCIDR: the network address, the gateway (.1) and the broadcast
/// address are never handed out.
#[derive(Debug, Clone)]
pub struct IpPool {
    cidr: Cidr,
    used: Vec<u64>,
    last: u32,
    in_use: u32,
}

impl IpPool {
    pub fn new(cidr: Cidr) -> IpPool {
        let words = cidr.size().div_ceil(64) as usize;
        IpPool { cidr, used: vec![0; words], last: 1, in_use: 0 }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    fn usable(&self, off: u32) -> bool {
        off >= 2 && (off as u64) < self.cidr.size().saturating_sub(1)
    }

    fn is_used(&self, off: u32) -> bool {
        self.used[(off / 64) as usize] & (1 << (off % 64)) != 0
    }

    fn set(&mut self, off: u32, on: bool) {
        let w = &mut self.used[(off / 64) as usize];
        if on {
            *w |= 1 << (off % 64);
        } else {
            *w &= !(1 << (off % 64));
        }
    }

    /// The next free address after the last one handed out, None when all are in use.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let size = self.cidr.size() as u32;
        for step in 1..=size {
            let off = ((self.last as u64 + step as u64) % size as u64) as u32;
            if self.usable(off) && !self.is_used(off) {
                self.set(off, true);
                self.last = off;
                self.in_use += 1;
                return Some(Ipv4Addr::from(self.cidr.base + off));
            }
        }
        None
    }

    /// Marks an address in use (a pod adopted after a restart); false if it is not ours or
    /// already taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        if !self.cidr.contains(ip) {
            return false;
        }
        let off = u32::from(ip) - self.cidr.base;
        if !self.usable(off) || self.is_used(off) {
            return false;
        }
        self.set(off, true);
        self.in_use += 1;
        true
    }

    /// Gives an address back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if self.cidr.contains(ip) {
            let off = u32::from(ip) - self.cidr.base;
            if self.usable(off) && self.is_used(off) {
                self.set(off, false);
                self.in_use -= 1;
            }
        }
    }

    pub fn in_use(&self) -> u32 {
        self.in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_split() {
        let c = Cidr::parse("10.244.0.0/14").unwrap();
        assert_eq!(c.subnet(24, 0).unwrap().to_string(), "10.244.0.0/24");
        assert_eq!(c.subnet(24, 300).unwrap().to_string(), "10.245.44.0/24");
        assert_eq!(c.subnet(24, 1023).unwrap().to_string(), "10.247.255.0/24");
        assert_eq!(c.subnet(24, 1024), None);
        assert_eq!(c.index_of(&Cidr::parse("10.245.44.0/24").unwrap()), Some(300));
        assert_eq!(c.index_of(&Cidr::parse("10.1.0.0/24").unwrap()), None);
        assert!(Cidr::parse("10.244.0.1/16").is_err());
        assert!(Cidr::parse("10.244.0.0").is_err());
        assert!(Cidr::parse("10.244.0.0/33").is_err());
        assert!(Cidr::parse("300.0.0.0/8").is_err());
        assert_eq!(node_ip(0).to_string(), "172.16.0.10");
        assert_eq!(node_ip(300).to_string(), "172.16.1.54");
    }

    #[test]
    fn pod_ips_are_unique_sequential_and_released() {
        let mut p = IpPool::new(Cidr::parse("10.0.1.0/29").unwrap());
        let got: Vec<String> = (0..5).map(|_| p.allocate().unwrap().to_string()).collect();
        assert_eq!(got, ["10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6"]);
        assert_eq!(p.allocate(), None);
        p.release("10.0.1.3".parse().unwrap());
        assert_eq!(p.in_use(), 4);
        assert_eq!(p.allocate().unwrap().to_string(), "10.0.1.3");
        p.release("10.0.1.2".parse().unwrap());
        p.release("10.0.1.4".parse().unwrap());
        // After the last one handed out (.3), not the lowest free one.
        assert_eq!(p.allocate().unwrap().to_string(), "10.0.1.4");
        assert!(!p.reserve("10.0.1.5".parse().unwrap()));
        assert!(p.reserve("10.0.1.2".parse().unwrap()));
        assert!(!p.reserve("10.0.2.2".parse().unwrap()));
        assert!(!p.reserve("10.0.1.7".parse().unwrap()));
    }
}
