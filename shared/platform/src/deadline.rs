//! The deadline a gRPC caller sent with its call (the `grpc-timeout` header), so a busy server
//! can stop waiting for a slot when the caller will no longer read the answer.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// The caller's deadline, from `grpc-timeout`: up to 8 digits and a unit (`H`, `M`, `S`, `m`,
/// `u`, `n`), as the gRPC over HTTP/2 protocol defines it. `None` when absent or malformed: no
/// deadline is then assumed.
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

fn parse(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_of_the_protocol_is_read_and_anything_else_is_ignored() {
        assert_eq!(parse("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse("99n"), Some(Duration::from_nanos(99)));
        for bad in ["", "m", "123456789m", "1.5S", "-1S", "10x", "10 m"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_timeout_a_tonic_client_sets_is_read_back() {
        let mut request = tonic::Request::new(());
        request.set_timeout(Duration::from_millis(1500));
        assert_eq!(
            grpc_timeout(request.metadata()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(grpc_timeout(tonic::Request::new(()).metadata()), None);
    }
}
