//! What a connection is configured with: our SETTINGS, the limits of each defence, and the
//! settings the peer sent us.

use std::time::Duration;

use super::frame::{Setting, SettingId, DEFAULT_MAX_FRAME_SIZE};

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// A token bucket: `burst` events at once, refilled at `per_sec` per second. Exceeding it
/// ends the connection with ENHANCE_YOUR_CALM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub per_sec: u32,
}

/// Our side of the connection. Defaults suit a server at the edge and a load generator.
#[derive(Debug, Clone)]
pub struct Config {
    /// SETTINGS_HEADER_TABLE_SIZE: the peer's encoder table, i.e. our decoder's memory.
    pub header_table_size: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer may open (REFUSED_STREAM beyond).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window.
    pub initial_window_size: u32,
    /// The connection's receive window, raised from 65,535 by one WINDOW_UPDATE at start.
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: names + values + 32 per field, checked while
    /// decoding (an HPACK bomb costs no more than this).
    pub max_header_list_size: u32,
    /// Compressed bytes of one field block (HEADERS + CONTINUATION): more is a
    /// CONTINUATION flood (CVE-2024-27316), answered with ENHANCE_YOUR_CALM.
    pub max_header_block_bytes: u32,
    /// CONTINUATION frames in one field block.
    pub max_continuation_frames: u32,
    /// Our encoder's table bound (the peer's setting may lower it further).
    pub encoder_table_size: u32,
    /// Streams the peer resets (or that we reset for its errors) before we finished
    /// answering them: rapid reset (CVE-2023-44487).
    pub reset_rate: Rate,
    /// SETTINGS frames (not ACKs) from the peer.
    pub settings_rate: Rate,
    /// PING frames (not ACKs) from the peer.
    pub ping_rate: Rate,
    /// Frames that carry nothing: zero-length DATA without END_STREAM, empty
    /// CONTINUATION without END_HEADERS, PRIORITY, unknown types.
    pub empty_frame_rate: Rate,
    /// Server: a stream reset before we answered it (by the peer, or for its error) keeps
    /// counting toward `max_concurrent_streams` until the caller says its work stopped
    /// (`Connection::work_cancelled`), so reset streams cannot pile up work beyond the
    /// limit (rapid reset). Off: the slot frees at the reset.
    pub hold_reset_slots: bool,
    /// Hand receive-window credit back as soon as DATA is reported (the caller consumes
    /// bodies at once). Off: the caller calls `Connection::release_capacity` after it
    /// consumed the bytes, and a slow consumer holds the peer back.
    pub auto_release_window: bool,
    /// How long the peer has to acknowledge our SETTINGS (then SETTINGS_TIMEOUT).
    pub settings_timeout: Duration,
    /// With no stream open for this long, the connection sends GOAWAY(NO_ERROR) and
    /// reports itself closed. `None`: the caller decides.
    pub idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            header_table_size: 4096,
            max_concurrent_streams: 100,
            initial_window_size: 1 << 20,
            connection_window: 16 << 20,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 32 << 10,
            max_header_block_bytes: 64 << 10,
            max_continuation_frames: 32,
            encoder_table_size: 4096,
            reset_rate: Rate {
                burst: 200,
                per_sec: 100,
            },
            settings_rate: Rate {
                burst: 32,
                per_sec: 10,
            },
            ping_rate: Rate {
                burst: 32,
                per_sec: 10,
            },
            empty_frame_rate: Rate {
                burst: 100,
                per_sec: 50,
            },
            hold_reset_slots: false,
            auto_release_window: true,
            settings_timeout: Duration::from_secs(10),
            idle_timeout: None,
        }
    }
}

impl Config {
    /// The SETTINGS frame we send first. A client also turns server push off.
    pub(crate) fn settings(&self, role: Role) -> ([Setting; 6], usize) {
        let list = [
            Setting {
                id: SettingId::MaxConcurrentStreams,
                value: self.max_concurrent_streams,
            },
            Setting {
                id: SettingId::InitialWindowSize,
                value: self.initial_window_size,
            },
            Setting {
                id: SettingId::MaxHeaderListSize,
                value: self.max_header_list_size,
            },
            Setting {
                id: SettingId::HeaderTableSize,
                value: self.header_table_size,
            },
            Setting {
                id: SettingId::MaxFrameSize,
                value: self.max_frame_size,
            },
            Setting {
                id: SettingId::EnablePush,
                value: 0,
            },
        ];
        (list, if role == Role::Client { 6 } else { 5 })
    }
}

/// The settings the peer sent (initial values until its first SETTINGS arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSettings {
    pub header_table_size: u32,
    pub enable_push: bool,
    /// `u32::MAX` until the peer sets it ("initially, there is no limit").
    pub max_concurrent_streams: u32,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    /// `u32::MAX` until the peer sets it.
    pub max_header_list_size: u32,
}

impl Default for PeerSettings {
    fn default() -> PeerSettings {
        PeerSettings {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: u32::MAX,
            initial_window_size: 65_535,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: u32::MAX,
        }
    }
}
