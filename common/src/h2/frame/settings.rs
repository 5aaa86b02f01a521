//! SETTINGS (RFC 9113 6.5): a list of (identifier, value) pairs, or an empty ACK.
//! Every value is checked at parse time, so the connection applies a frame whole or not
//! at all.

use super::error::{ErrorCode, FrameError};
use super::head::{
    flags, FrameHead, Kind, DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE, MAX_STREAM_ID,
};
use super::payload::{read_u32, require_connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingId {
    HeaderTableSize,
    EnablePush,
    MaxConcurrentStreams,
    InitialWindowSize,
    MaxFrameSize,
    MaxHeaderListSize,
    /// RFC 8441's extended CONNECT.
    EnableConnectProtocol,
    /// "An endpoint that receives a SETTINGS frame with any unknown or unsupported
    /// identifier MUST ignore that setting."
    Unknown(u16),
}

impl SettingId {
    pub fn from_u16(v: u16) -> SettingId {
        match v {
            1 => SettingId::HeaderTableSize,
            2 => SettingId::EnablePush,
            3 => SettingId::MaxConcurrentStreams,
            4 => SettingId::InitialWindowSize,
            5 => SettingId::MaxFrameSize,
            6 => SettingId::MaxHeaderListSize,
            8 => SettingId::EnableConnectProtocol,
            other => SettingId::Unknown(other),
        }
    }

    pub fn as_u16(self) -> u16 {
        match self {
            SettingId::HeaderTableSize => 1,
            SettingId::EnablePush => 2,
            SettingId::MaxConcurrentStreams => 3,
            SettingId::InitialWindowSize => 4,
            SettingId::MaxFrameSize => 5,
            SettingId::MaxHeaderListSize => 6,
            SettingId::EnableConnectProtocol => 8,
            SettingId::Unknown(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub id: SettingId,
    pub value: u32,
}

impl Setting {
    pub(crate) fn check(self) -> Result<(), FrameError> {
        let bad = match self.id {
            SettingId::EnablePush | SettingId::EnableConnectProtocol => self.value > 1,
            // "Values above the maximum flow-control window size of 2^31-1 MUST be
            // treated as a connection error of type FLOW_CONTROL_ERROR."
            SettingId::InitialWindowSize if self.value > MAX_STREAM_ID => {
                return Err(FrameError::Connection(ErrorCode::FLOW_CONTROL_ERROR))
            }
            SettingId::MaxFrameSize => {
                !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&self.value)
            }
            _ => false,
        };
        if bad {
            Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR))
        } else {
            Ok(())
        }
    }
}

/// A SETTINGS frame; `iter` walks the pairs in order (later values win).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings<'a> {
    pub ack: bool,
    raw: &'a [u8],
}

impl<'a> Settings<'a> {
    pub fn parse(head: FrameHead, payload: &'a [u8]) -> Result<Settings<'a>, FrameError> {
        require_connection(head)?;
        let ack = head.has(flags::ACK);
        // "Receipt of a SETTINGS frame with the ACK flag set and a length field value other
        // than 0 MUST be treated as a connection error of type FRAME_SIZE_ERROR." And a
        // length that is not a multiple of 6 likewise.
        if (ack && !payload.is_empty()) || payload.len() % 6 != 0 {
            return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
        }
        let s = Settings { ack, raw: payload };
        for setting in s.iter() {
            setting.check()?;
        }
        Ok(s)
    }

    pub fn iter(&self) -> SettingsIter<'a> {
        SettingsIter { rest: self.raw }
    }

    pub fn len(&self) -> usize {
        self.raw.len() / 6
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn encode(settings: &[Setting], out: &mut Vec<u8>) {
        FrameHead::new(Kind::Settings, 0, 0, 6 * settings.len() as u32).encode(out);
        for s in settings {
            out.extend_from_slice(&s.id.as_u16().to_be_bytes());
            out.extend_from_slice(&s.value.to_be_bytes());
        }
    }

    pub fn encode_ack(out: &mut Vec<u8>) {
        FrameHead::new(Kind::Settings, flags::ACK, 0, 0).encode(out);
    }
}

pub struct SettingsIter<'a> {
    rest: &'a [u8],
}

impl Iterator for SettingsIter<'_> {
    type Item = Setting;

    fn next(&mut self) -> Option<Setting> {
        if self.rest.len() < 6 {
            return None;
        }
        let (one, rest) = self.rest.split_at(6);
        self.rest = rest;
        Some(Setting {
            id: SettingId::from_u16(u16::from_be_bytes([one[0], one[1]])),
            value: read_u32(&one[2..]),
        })
    }
}
