//! Where a tensor lives: plain data. Whether a device exists is checked by the storage layer
//! ([`Device::cuda`], [`Device::ensure_available`]).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A compute device: the host CPU or one CUDA GPU by ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory and the CPU backend.
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
}

impl Device {
    /// Whether this is the CPU.
    pub fn is_cpu(self) -> bool {
        self == Device::Cpu
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;

    /// Parses `"cpu"`, `"cuda"` (device 0) or `"cuda:N"`; does not check availability.
    fn from_str(s: &str) -> Result<Device> {
        let bad = || {
            Error::Device(format!(
                "unknown device {s:?}: expected \"cpu\", \"cuda\" or \"cuda:N\""
            ))
        };
        match s.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => {
                let idx = other.strip_prefix("cuda:").ok_or_else(bad)?;
                idx.parse().map(Device::Cuda).map_err(|_| bad())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", ""] {
            let err = bad.parse::<Device>().unwrap_err();
            assert!(matches!(err, Error::Device(ref m) if m.contains("unknown device")));
        }
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
    }
}
