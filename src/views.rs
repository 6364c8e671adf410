//! Zero-copy keys for string labels: a String column of Polars arrives through the
//! Arrow C stream interface as one string-view array (16 bytes a row), and each row's
//! key is a 64-bit hash of its bytes, computed on the fly. No hash column is
//! materialised (a fresh 8-byte-a-row array costs more in page faults than hashing).
//!
//! The structs follow the Arrow C data interface (a stable ABI).

use std::ffi::{c_char, c_void, CStr};

use crate::error::{invalid, Result};

#[repr(C)]
pub struct FfiSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut FfiSchema,
    dictionary: *mut FfiSchema,
    release: Option<unsafe extern "C" fn(*mut FfiSchema)>,
    private_data: *mut c_void,
}

#[repr(C)]
pub struct FfiArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut FfiArray,
    dictionary: *mut FfiArray,
    release: Option<unsafe extern "C" fn(*mut FfiArray)>,
    private_data: *mut c_void,
}

#[repr(C)]
pub struct FfiStream {
    get_schema: Option<unsafe extern "C" fn(*mut FfiStream, *mut FfiSchema) -> i32>,
    get_next: Option<unsafe extern "C" fn(*mut FfiStream, *mut FfiArray) -> i32>,
    get_last_error: Option<unsafe extern "C" fn(*mut FfiStream) -> *const c_char>,
    release: Option<unsafe extern "C" fn(*mut FfiStream)>,
    private_data: *mut c_void,
}

fn empty_array() -> FfiArray {
    FfiArray {
        length: 0,
        null_count: 0,
        offset: 0,
        n_buffers: 0,
        n_children: 0,
        buffers: std::ptr::null_mut(),
        children: std::ptr::null_mut(),
        dictionary: std::ptr::null_mut(),
        release: None,
        private_data: std::ptr::null_mut(),
    }
}

/// One string-view array taken from a stream; released when dropped.
pub struct StringViews {
    array: FfiArray,
    views: *const [u8; 16],
    len: usize,
    /// Data buffers of the strings longer than 12 bytes.
    buffers: Vec<(*const u8, usize)>,
}

// The array is only read, and its buffers live until `drop` releases them.
unsafe impl Send for StringViews {}
unsafe impl Sync for StringViews {}

impl std::fmt::Debug for StringViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StringViews({} rows)", self.len)
    }
}

impl Drop for StringViews {
    fn drop(&mut self) {
        if let Some(release) = self.array.release {
            unsafe { release(&mut self.array) };
        }
    }
}

impl StringViews {
    /// Takes the single string-view (`vu`) array of an Arrow C stream.
    ///
    /// # Safety
    /// `stream` must point to a live Arrow C stream (it stays owned by the caller).
    pub unsafe fn from_stream(stream: *mut FfiStream) -> Result<StringViews> {
        let stream = &mut *stream;
        let (Some(get_schema), Some(get_next)) = (stream.get_schema, stream.get_next) else {
            return Err(invalid("the Arrow stream was already released"));
        };
        let mut schema = FfiSchema {
            format: std::ptr::null(),
            name: std::ptr::null(),
            metadata: std::ptr::null(),
            flags: 0,
            n_children: 0,
            children: std::ptr::null_mut(),
            dictionary: std::ptr::null_mut(),
            release: None,
            private_data: std::ptr::null_mut(),
        };
        if get_schema(stream, &mut schema) != 0 {
            return Err(invalid("the Arrow stream has no schema"));
        }
        let format = CStr::from_ptr(schema.format).to_bytes() == b"vu";
        if let Some(release) = schema.release {
            release(&mut schema);
        }
        if !format {
            return Err(invalid("labels are not an Arrow string-view array"));
        }
        let mut array = empty_array();
        if get_next(stream, &mut array) != 0 || array.release.is_none() {
            return Err(invalid("the Arrow stream has no array"));
        }
        let mut views = StringViews {
            array,
            views: std::ptr::null(),
            len: 0,
            buffers: Vec::new(),
        };
        let mut next = empty_array();
        if get_next(stream, &mut next) != 0 || next.release.is_some() {
            if let Some(release) = next.release {
                release(&mut next);
            }
            return Err(invalid(
                "labels must come as one Arrow array (rechunk first)",
            ));
        }
        let a = &views.array;
        // Buffers: validity, views, data buffers..., the data buffers' lengths.
        if a.n_buffers < 3 || a.length < 0 || a.offset < 0 {
            return Err(invalid("malformed Arrow string-view array"));
        }
        let buffers = std::slice::from_raw_parts(a.buffers, a.n_buffers as usize);
        let n_data = buffers.len() - 3;
        let lengths = buffers[buffers.len() - 1] as *const i64;
        views.buffers = (0..n_data)
            .map(|i| (buffers[2 + i] as *const u8, *lengths.add(i) as usize))
            .collect();
        views.views = (buffers[1] as *const [u8; 16]).add(a.offset as usize);
        views.len = a.length as usize;
        Ok(views)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The row's view with unused inline bytes cleared: equal identities mean equal
    /// strings (unequal ones may still be equal strings stored twice).
    #[inline(always)]
    pub fn identity(&self, row: usize) -> u128 {
        assert!(row < self.len);
        let view = u128::from_le_bytes(unsafe { *self.views.add(row) });
        let len = view as u32 as usize;
        if len <= 12 {
            view & (u128::MAX >> (8 * (12 - len)))
        } else {
            view
        }
    }

    /// A 64-bit hash of the row's string.
    #[inline(always)]
    pub fn key(&self, row: usize) -> u64 {
        assert!(row < self.len);
        let view = u128::from_le_bytes(unsafe { *self.views.add(row) });
        let len = view as u32 as usize;
        if len <= 12 {
            // Length and inline bytes only: do not rely on the producer's zero padding.
            return mix(view & (u128::MAX >> (8 * (12 - len))), SEEDS[0]);
        }
        let index = (view >> 64) as u32 as usize;
        let offset = (view >> 96) as u32 as usize;
        match self.buffers.get(index) {
            Some(&(data, size)) if offset + len <= size => {
                let bytes = unsafe { std::slice::from_raw_parts(data.add(offset), len) };
                hash_bytes(bytes)
            }
            // A view pointing outside its buffer: malformed input, keyed by the view.
            _ => mix(view, SEEDS[1]),
        }
    }
}

const SEEDS: [u64; 4] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
    0x082E_FA98_EC4E_6C89,
];

/// Folded multiply: the 128-bit product of two words, halves xored.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    product as u64 ^ (product >> 64) as u64
}

/// 16 bytes (and a seed) to 64 well-mixed bits.
#[inline(always)]
fn mix(value: u128, seed: u64) -> u64 {
    let (lo, hi) = (value as u64, (value >> 64) as u64);
    fold(fold(lo ^ seed, hi ^ SEEDS[2]), SEEDS[3] ^ seed)
}

/// A string longer than 12 bytes: its 16-byte chunks (the last one overlapping).
#[inline(always)]
fn hash_bytes(bytes: &[u8]) -> u64 {
    let chunk = |at: usize| u128::from_le_bytes(bytes[at..at + 16].try_into().expect("16 bytes"));
    let mut state = SEEDS[1] ^ bytes.len() as u64;
    if bytes.len() < 16 {
        // 13 to 15 bytes: the first 8 and the last 8 cover them all.
        let head = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let tail = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().expect("8 bytes"));
        return mix(u128::from(head) | (u128::from(tail) << 64), state);
    }
    let mut at = 0;
    while at + 16 < bytes.len() {
        state = mix(chunk(at), state);
        at += 16;
    }
    mix(chunk(bytes.len() - 16), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_hash_every_byte() {
        let base = b"Information Technology and more".to_vec();
        let mut seen = std::collections::HashSet::new();
        for len in 13..base.len() {
            assert!(seen.insert(hash_bytes(&base[..len])));
            for i in 0..len {
                let mut changed = base[..len].to_vec();
                changed[i] ^= 1;
                assert_ne!(
                    hash_bytes(&changed),
                    hash_bytes(&base[..len]),
                    "len {len} byte {i}"
                );
            }
        }
    }
}
