//! Remote sources, checked once and fetched only as checked: a URL is parsed once,
//! with the parser the HTTP client fetches with (the `url` crate, which reqwest uses),
//! its host resolved once and every address classified ([`is_private`]), and the
//! connection pinned to those addresses ([`CheckedUrl::client`]). Redirects are never
//! followed by a client on its own: [`fetch`] re-checks every hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use super::error::ApiError;
use super::source::Policy;

/// Most redirects [`fetch`] follows (each one checked like the first URL).
pub const MAX_REDIRECTS: usize = 5;

pub use crate::pipeline::redact;

/// The characters RFC 3986 allows in a URI. Anything else (spaces, quotes,
/// backslashes, `<>{}|^` and backquotes, control and non-ASCII characters) is where
/// URL parsers disagree, so it is refused rather than guessed at.
fn uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// A remote source's URL (`http`, `https`, `rtsp`, `rtsps`), parsed once. Refuses what
/// two parsers could read differently: characters outside RFC 3986, more than one `@`
/// in the authority, a host with percent-escapes.
pub fn parse_remote(text: &str) -> Result<Url, ApiError> {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| !uri_char(*c)) {
        return Err(ApiError::bad_request(format!(
            "{}: not a valid URI: {c:?} at byte {i} (percent-encode it)",
            redact(text)
        )));
    }
    let url = Url::parse(text)
        .map_err(|e| ApiError::bad_request(format!("{}: not a valid URI ({e})", redact(text))))?;
    if !matches!(url.scheme(), "http" | "https" | "rtsp" | "rtsps") {
        return Err(ApiError::bad_request(format!(
            "{}: use http(s):// or rtsp(s)://",
            redact(text)
        )));
    }
    // The authority as written, not as a lenient parser repairs it ("http:///x" and
    // "http:x" are read as host "x").
    let authority = text
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_part.is_empty() || host_part.starts_with(':') {
        return Err(ApiError::bad_request(format!("{}: no host", redact(text))));
    }
    if authority.matches('@').count() > 1 {
        return Err(ApiError::bad_request(format!(
            "{}: more than one '@' in the address (percent-encode '@' in a password as %40)",
            redact(text)
        )));
    }
    match url.host() {
        None => Err(ApiError::bad_request(format!("{}: no host", redact(text)))),
        // A name as DNS knows it: a percent-escape in a host decodes to anything
        // (a quote, a space), which other parsers would read otherwise.
        Some(Host::Domain(d))
            if d.is_empty()
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) =>
        {
            Err(ApiError::bad_request(format!(
                "{}: not a valid host name",
                redact(text)
            )))
        }
        Some(_) => Ok(url),
    }
}

/// The port a URL connects to (RTSP's is 554 unless given).
pub fn port(url: &Url) -> u16 {
    url.port_or_known_default().unwrap_or(554)
}

/// A remote URL that passed the policy, with the addresses its host resolved to when
/// it was checked: connections go to these and nowhere else.
#[derive(Clone, Debug)]
pub struct CheckedUrl {
    /// The URL as parsed (credentials included: never show it, see [`redact`]).
    pub url: Url,
    /// Where its host resolved when checked.
    pub addrs: Vec<SocketAddr>,
}

impl CheckedUrl {
    /// Parses and checks `text` (see [`check`]).
    pub async fn parse(text: &str, policy: &Policy) -> Result<Self, ApiError> {
        check(parse_remote(text)?, policy).await
    }

    /// The URL without credentials, for logs and answers.
    pub fn shown(&self) -> String {
        redact(self.url.as_str())
    }

    /// The URL with its host replaced by the first checked address: a client given
    /// this connects where the check looked, whatever DNS answers later.
    pub fn pinned(&self) -> Url {
        let mut u = self.url.clone();
        if let Some(a) = self.addrs.first() {
            let _ = u.set_ip_host(a.ip());
        }
        u
    }

    /// An HTTP client that connects only to the checked addresses, follows no
    /// redirect, and gives up on a silent server.
    pub fn client(&self) -> Result<reqwest::Client, ApiError> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(30))
            .no_proxy();
        if let Some(Host::Domain(d)) = self.url.host() {
            b = b.resolve_to_addrs(d, &self.addrs);
        }
        b.build()
            .map_err(|e| ApiError::internal(format!("HTTP client: {e}")))
    }
}

/// Remote sources: allowed at all, and not pointing into this machine or its private
/// network unless that is allowed (`--allow-private`, or the address is in an
/// `--allow-net` network). The host is resolved once; the addresses are returned.
pub async fn check(url: Url, policy: &Policy) -> Result<CheckedUrl, ApiError> {
    let shown = redact(url.as_str());
    if !policy.allow_remote {
        return Err(ApiError::forbidden(format!(
            "{shown}: remote sources are not allowed: the server was started without --allow-remote"
        )));
    }
    let port = port(&url);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|_| ApiError::bad_gateway(format!("{d}: cannot resolve the host")))?
            .collect(),
        None => return Err(ApiError::bad_request(format!("{shown}: no host"))),
    };
    if addrs.is_empty() {
        return Err(ApiError::bad_gateway(format!("{shown}: no address")));
    }
    if let Some(a) = addrs.iter().find(|a| !policy.may_connect(a.ip())) {
        return Err(ApiError::forbidden(format!(
            "{shown}: resolves to {}, a loopback, private or reserved address; the server \
             refuses those without --allow-private (or --allow-net for that network)",
            a.ip()
        )));
    }
    Ok(CheckedUrl { url, addrs })
}

/// GETs a checked URL; a redirect is followed only to a URL that passes the same
/// checks (at most [`MAX_REDIRECTS`]). Answers other than 2xx are errors.
pub async fn fetch(first: CheckedUrl, policy: &Policy) -> Result<reqwest::Response, ApiError> {
    let mut at = first;
    for _ in 0..=MAX_REDIRECTS {
        let shown = at.shown();
        let resp = at
            .client()?
            .get(at.url.clone())
            .send()
            .await
            .map_err(|_| ApiError::bad_gateway(format!("{shown}: cannot fetch")))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    ApiError::bad_gateway(format!("{shown}: answered {status} without a Location"))
                })?;
            let next = at.url.join(location).map_err(|_| {
                ApiError::bad_gateway(format!("{shown}: answered {status} to an invalid URL"))
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(ApiError::bad_gateway(format!(
                    "{shown}: redirected to a {} URL",
                    next.scheme()
                )));
            }
            at = check(parse_remote(next.as_str())?, policy).await?;
            continue;
        }
        if !status.is_success() {
            return Err(if status == reqwest::StatusCode::NOT_FOUND {
                ApiError::not_found(format!("{shown}: not found (404)"))
            } else {
                ApiError::bad_gateway(format!("{shown}: answered {status}"))
            });
        }
        return Ok(resp);
    }
    Err(ApiError::bad_gateway(format!(
        "{}: more than {MAX_REDIRECTS} redirects",
        at.shown()
    )))
}

/// Feeds a live pipeline's appsrc from a checked http(s) URL through [`fetch`], on a
/// thread of its own: the pipeline never opens the URL itself, so it cannot follow a
/// redirect or resolve the host again. Bytes are pushed as they arrive (the appsrc
/// blocks when its queue is full); a failed fetch is an error on the bus.
pub fn http_feeder(first: CheckedUrl, policy: Policy) -> crate::pipeline::live::Feeder {
    std::sync::Arc::new(move |appsrc: gst_app::AppSrc| {
        let (first, policy) = (first.clone(), policy.clone());
        let spawned = std::thread::Builder::new()
            .name("serve-fetch".into())
            .spawn(move || {
                let outcome = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ApiError::internal(e.to_string()))
                    .and_then(|rt| rt.block_on(feed(first, &policy, &appsrc)));
                match outcome {
                    Ok(()) => {
                        let _ = appsrc.end_of_stream();
                    }
                    Err(e) => gst::prelude::ElementExtManual::post_error_message(
                        &appsrc,
                        gst::error_msg!(gst::ResourceError::Read, ["{}", e.message]),
                    ),
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start a fetch thread: {e}");
        }
    })
}

async fn feed(
    first: CheckedUrl,
    policy: &Policy,
    appsrc: &gst_app::AppSrc,
) -> Result<(), ApiError> {
    use futures_util::StreamExt;
    let shown = first.shown();
    let mut stream = fetch(first, policy).await?.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad_gateway(format!("{shown}: the connection broke")))?;
        if appsrc.push_buffer(gst::Buffer::from_slice(chunk)).is_err() {
            // The pipeline stopped.
            return Ok(());
        }
    }
    Ok(())
}

/// A network in CIDR notation (`10.0.5.0/24`, `fd00::/8`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// A network option that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{0:?}: give a network like 10.0.5.0/24, fd00::/8 or one address")]
pub struct NetworkError(String);

impl std::str::FromStr for Network {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, NetworkError> {
        let bad = || NetworkError(s.to_string());
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim().parse::<u8>().map_err(|_| bad())?
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl Network {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Loopback, private, link-local, unspecified, shared, multicast, reserved and
/// documentation addresses — nothing a public video URL should point to — in every
/// form: IPv4, IPv6, and IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`), whose embedded address is classified too. Teredo, local-use
/// NAT64 and other special-purpose IPv6 ranges count as private.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => private_v4(v),
        IpAddr::V6(v) => private_v6(v),
    }
}

fn private_v4(v: Ipv4Addr) -> bool {
    let o = v.octets();
    v.is_loopback()
        || v.is_private()
        || v.is_link_local()
        || v.is_unspecified()
        || v.is_broadcast()
        || v.is_multicast()
        || v.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        || o[0] >= 240
}

fn private_v6(v: Ipv6Addr) -> bool {
    let s = v.segments();
    let bits = u128::from(v);
    let embedded = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if let Some(m) = v.to_ipv4_mapped() {
        return private_v4(m);
    }
    // ::/96 (IPv4-compatible, and :: and ::1 themselves) and ::ffff:0:0/96 (translated).
    if bits >> 32 == 0 || bits >> 32 == 0xffff_0000 {
        return true;
    }
    // NAT64 well-known prefix: the embedded IPv4 address decides.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return private_v4(embedded);
    }
    // 6to4: the IPv4 address in bits 16..48 decides.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return private_v4(v4);
    }
    v.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard 100::/64
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, Teredo 2001::/32
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || s[0] == 0x3fff // documentation 3fff::/20
        || s[0] == 0x5f00 // segment routing 5f00::/16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_in_every_form() {
        for a in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.8",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in [
            "8.8.8.8",
            "151.101.1.1",
            "2a00:1450:4001::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn ambiguous_urls_are_refused() {
        for bad in [
            "http://127.0.0.1:9100\\@1.2.3.4/x",
            "http://1.2.3.4/clip.mp4\" filesrc location=/etc/passwd ! filesink location=/tmp/x name=\"y",
            "http://a b/x",
            "http://user@pw@host/x",
            "http://host/x\n",
            "http://hö.st/x",
            "ftp://host/x",
            "http:///x",
            "http:x",
            "http://:80/x",
            "http://u:p@/x",
            "rtsp://ho%73t/x",
            // Found by fuzzing: an escaped quote in the host, decoded by the parser.
            "http://-22oo22%22222/",
            "http://a%20b/x",
        ] {
            assert!(parse_remote(bad).is_err(), "{bad}");
        }
        let u = parse_remote("http://u:p@Example.COM:8080/a?b#c").unwrap();
        assert_eq!(u.host_str(), Some("example.com"));
        assert_eq!(port(&u), 8080);
        assert_eq!(port(&parse_remote("rtsp://cam/x").unwrap()), 554);
        // The forms of 127.0.0.1 a WHATWG parser (and so the HTTP client) reads.
        for alias in ["http://2130706433/", "http://0x7f.1/", "http://127.1/"] {
            assert_eq!(
                parse_remote(alias).unwrap().host(),
                Some(Host::Ipv4(Ipv4Addr::LOCALHOST)),
                "{alias}"
            );
        }
    }

    #[test]
    fn networks() {
        let n: Network = "10.0.5.0/24".parse().unwrap();
        assert!(n.contains("10.0.5.7".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.5.7".parse().unwrap()));
        assert!(!n.contains("10.0.6.7".parse().unwrap()));
        let one: Network = "127.0.0.2".parse().unwrap();
        assert!(one.contains("127.0.0.2".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        assert!(
            "0.0.0.0/0"
                .parse::<Network>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            "fd00::/8"
                .parse::<Network>()
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("host/8".parse::<Network>().is_err());
    }

    #[test]
    fn credentials_never_shown() {
        assert_eq!(
            redact("rtsp://admin:s3cret@10.0.0.5:554/stream1"),
            "rtsp://***@10.0.0.5:554/stream1"
        );
        assert_eq!(redact("http://u:p@h/x"), "http://***@h/x");
        assert_eq!(redact("rtsp://cam/x"), "rtsp://cam/x");
        assert_eq!(redact("rtsp://a b:pw@cam/x"), "rtsp://***@cam/x");
    }
}
