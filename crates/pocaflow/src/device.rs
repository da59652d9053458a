//! Where a tensor lives.

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
    /// The CUDA device `ordinal`, after checking that it exists and can be used.
    ///
    /// # Errors
    /// [`Error::Device`] when pocaflow was built without CUDA, no CUDA driver or library is found,
    /// or `ordinal` is not below the device count.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        let count = crate::backend::cuda_device_count()?;
        if ordinal >= count {
            return Err(Error::Device(format!(
                "CUDA device cuda:{ordinal} requested but only {count} device(s) are visible"
            )));
        }
        Ok(Device::Cuda(ordinal))
    }

    /// Whether this is the CPU.
    pub fn is_cpu(self) -> bool {
        self == Device::Cpu
    }

    /// Checks that the device can be used now (a CUDA device must exist).
    pub fn ensure_available(self) -> Result<Device> {
        match self {
            Device::Cpu => Ok(self),
            Device::Cuda(i) => Device::cuda(i),
        }
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
