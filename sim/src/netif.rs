//! The node's addresses: what `address any`, an interface name or an IP
//! literal in `aerospike.conf` turn into.
//!
//! As in the server (`cf_inter_get_addr_all` / `cf_inter_get_addr_name`
//! in the common library; `enum_addrs` in `as/src/fabric/service_list.c`
//! skips local addresses), `any` means every non-loopback IPv4 address of
//! the node's interfaces, in the order the kernel lists them
//! (getifaddrs(3)); an interface name means that interface's addresses; an
//! IP literal means that address only.
//!
//! Test seam: `AEROSPIKE_SIM_INTERFACES=[name=]ip,...` replaces the
//! enumerated list (names default to `sim0`, `sim1`, ...). Its addresses
//! are taken as they are, loopback ones included, so loopback tests can
//! give a node several addresses, one of them shared with another node.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::Address;

/// One interface address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name (`eth0`).
    pub name: String,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
}

/// Parses the `AEROSPIKE_SIM_INTERFACES` seam: `[name=]ip` entries,
/// separated by commas.
pub fn parse_interfaces(text: &str) -> Result<Vec<Interface>, String> {
    let mut out = Vec::new();
    for (index, item) in text.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let (name, ip) = match item.split_once('=') {
            Some((name, ip)) => (name.to_string(), ip),
            None => (format!("sim{index}"), item),
        };
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("interface entry '{item}' is not [name=]IPv4"))?;
        out.push(Interface { name, ip });
    }
    if out.is_empty() {
        return Err("no interface in the list".to_string());
    }
    Ok(out)
}

/// The IPv4 addresses of this host's interfaces, in kernel order.
pub fn enumerate() -> Result<Vec<Interface>, String> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a linked list we only read and then free
    // with freeifaddrs; every pointer is checked for null before use and
    // ifa_addr is only read as sockaddr_in when its family is AF_INET.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return Err(format!("getifaddrs: {}", std::io::Error::last_os_error()));
        }
        let mut cursor = head;
        while !cursor.is_null() {
            let entry = &*cursor;
            cursor = entry.ifa_next;
            if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
                continue;
            }
            if i32::from((*entry.ifa_addr).sa_family) != libc::AF_INET {
                continue;
            }
            let sin = &*(entry.ifa_addr as *const libc::sockaddr_in);
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            let name = std::ffi::CStr::from_ptr(entry.ifa_name)
                .to_string_lossy()
                .into_owned();
            out.push(Interface { name, ip });
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

/// What one `address` line resolves to. `seam` says the interface list
/// came from `AEROSPIKE_SIM_INTERFACES` (loopback entries then count).
pub fn resolve(
    address: &Address,
    interfaces: &[Interface],
    seam: bool,
) -> Result<Vec<IpAddr>, String> {
    match address {
        Address::Ip(ip) => Ok(vec![*ip]),
        Address::Any => {
            let all: Vec<IpAddr> = interfaces
                .iter()
                .filter(|i| seam || !i.ip.is_loopback())
                .map(|i| IpAddr::V4(i.ip))
                .collect();
            if all.is_empty() {
                // A host with only a loopback interface: the server then
                // has nothing else to publish either.
                Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
            } else {
                Ok(dedup(all))
            }
        }
        Address::Interface(name) => {
            let found: Vec<IpAddr> = interfaces
                .iter()
                .filter(|i| &i.name == name)
                .map(|i| IpAddr::V4(i.ip))
                .collect();
            if found.is_empty() {
                Err(format!(
                    "interface '{name}' not found or has no IPv4 address"
                ))
            } else {
                Ok(dedup(found))
            }
        }
    }
}

fn dedup(list: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in list {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<Interface> {
        parse_interfaces("lo=127.0.0.1,eth0=10.0.1.5,eth1=172.18.0.3").unwrap()
    }

    #[test]
    fn any_is_every_non_loopback_address_in_order() {
        let ips = resolve(&Address::Any, &list(), false).unwrap();
        assert_eq!(
            ips,
            vec![
                "10.0.1.5".parse::<IpAddr>().unwrap(),
                "172.18.0.3".parse().unwrap()
            ]
        );
    }

    #[test]
    fn an_interface_name_is_that_interface_only() {
        let ips = resolve(&Address::Interface("eth0".into()), &list(), false).unwrap();
        assert_eq!(ips, vec!["10.0.1.5".parse::<IpAddr>().unwrap()]);
        assert!(resolve(&Address::Interface("eth9".into()), &list(), false).is_err());
    }

    #[test]
    fn the_seam_keeps_loopback_entries_and_names_them() {
        let seam = parse_interfaces("127.0.1.1, 127.0.9.9").unwrap();
        assert_eq!(seam[1].name, "sim1");
        let ips = resolve(&Address::Any, &seam, true).unwrap();
        assert_eq!(ips.len(), 2);
        assert!(parse_interfaces("eth0=nope").is_err());
        assert!(parse_interfaces(" , ").is_err());
    }

    #[test]
    fn this_host_has_interfaces() {
        let all = enumerate().unwrap();
        assert!(all.iter().any(|i| i.ip.is_loopback()), "{all:?}");
    }
}
