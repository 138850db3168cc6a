//! The fast path of block decoding: an uncompressed block's five columns built straight
//! from the buffers [`check_buffers`](crate::block) located, sharing the message buffer.
//!
//! arrow-ipc's `FileDecoder` parses and verifies the message's flatbuffer a second time,
//! builds an `ArrayData` per column through a generic builder and validates each one,
//! which cost about half of a block miss (callgrind, `opcost --op get --cold`). A run block
//! always has the run schema's twelve buffers, so this module checks exactly what building
//! the arrays needs (node lengths, no nulls, buffer sizes and alignment, offsets ascending
//! within the data) and leaves the rows to `block::check_rows`, as before. Anything it does not
//! expect (a compressed body, another buffer count, a misaligned buffer) returns `None`
//! and the block goes through `FileDecoder` instead.

use crate::block::{DecodedBlock, Layout};
use arrow_array::{BinaryArray, TimestampMicrosecondArray, UInt64Array, UInt8Array};
use arrow_buffer::{ArrowNativeType, Buffer, OffsetBuffer, ScalarBuffer};

// The run schema's buffers, in order (see `block::BUFFER_WIDTHS`); the validity buffers
// (0, 3, 5, 7, 10) are not read, as every null count must be 0.
const KEY_OFFSETS: usize = 1;
const KEY_DATA: usize = 2;
const VERSIONS: usize = 4;
const KINDS: usize = 6;
const VALUE_OFFSETS: usize = 8;
const VALUE_DATA: usize = 9;
const TIMES: usize = 11;

/// The columns of the uncompressed block in `msg`, `Ok(None)` if `layout` is not the
/// plain shape this path builds, or why the buffers cannot be the run schema's.
pub(crate) fn columns(msg: &Buffer, layout: &Layout) -> Result<Option<DecodedBlock>, String> {
    if layout.compressed || layout.buffers.len() != 12 || layout.nodes.len() != 5 {
        return Ok(None);
    }
    let rows = usize::try_from(layout.rows).map_err(|_| "negative row count".to_string())?;
    if layout.nodes.iter().any(|&(len, _)| len != layout.rows) {
        return Err("columns have different lengths".into());
    }
    if layout.nodes.iter().any(|&(_, nulls)| nulls != 0) {
        return Err("null in a non-nullable column".into());
    }
    let buffer = |i: usize| {
        let (off, len) = layout.buffers[i];
        msg.slice_with_length(off, len)
    };
    let (Some(key_offsets), Some(value_offsets)) = (
        scalars::<i32>(buffer(KEY_OFFSETS), rows + 1),
        scalars::<i32>(buffer(VALUE_OFFSETS), rows + 1),
    ) else {
        return Ok(None);
    };
    let (Some(versions), Some(kinds), Some(times)) = (
        scalars::<u64>(buffer(VERSIONS), rows),
        scalars::<u8>(buffer(KINDS), rows),
        scalars::<i64>(buffer(TIMES), rows),
    ) else {
        return Ok(None);
    };
    let keys = binary(key_offsets, buffer(KEY_DATA)).map_err(|e| format!("key column: {e}"))?;
    let values =
        binary(value_offsets, buffer(VALUE_DATA)).map_err(|e| format!("value column: {e}"))?;
    Ok(Some(DecodedBlock::new(
        keys,
        UInt64Array::new(versions, None),
        UInt8Array::new(kinds, None),
        values,
        TimestampMicrosecondArray::new(times, None),
    )))
}

/// The first `n` values of `buf`, if it holds that many and is aligned for `T` (a run's
/// buffers are: messages start at multiples of 8 and pad buffers to 8).
fn scalars<T: ArrowNativeType>(buf: Buffer, n: usize) -> Option<ScalarBuffer<T>> {
    let aligned = buf.as_ptr().align_offset(std::mem::align_of::<T>()) == 0;
    let long_enough = n.checked_mul(std::mem::size_of::<T>())? <= buf.len();
    (aligned && long_enough).then(|| ScalarBuffer::new(buf, 0, n))
}

/// A binary array of `offsets` into `data`, once the offsets are checked: non-negative,
/// ascending, the last within `data` (what `OffsetBuffer::new` and `BinaryArray::new`
/// would otherwise panic on). Checked once here: arrow's checked constructors would walk
/// the offsets twice more, a fifth of a block miss's decoding (callgrind, `opcost --op
/// seek` at 1M keys).
fn binary(offsets: ScalarBuffer<i32>, data: Buffer) -> Result<BinaryArray, String> {
    let o: &[i32] = &offsets;
    if o.is_empty() || o[0] < 0 || o.windows(2).any(|w| w[0] > w[1]) {
        return Err("offsets not ascending from zero or more".into());
    }
    if o[o.len() - 1] as usize > data.len() {
        return Err(format!(
            "offsets end at {} past the {}-byte data",
            o[o.len() - 1],
            data.len()
        ));
    }
    // SAFETY: the offsets are non-empty, non-negative and ascending (checked above), which
    // is `OffsetBuffer::new_unchecked`'s contract.
    let offsets = unsafe { OffsetBuffer::new_unchecked(offsets) };
    // SAFETY: every offset lies within `data` (the last, hence all, checked above), there
    // are no nulls, and binary values need no UTF-8 check: `new_unchecked`'s contract.
    Ok(unsafe { BinaryArray::new_unchecked(offsets, data, None) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_refuses_what_arrow_would_panic_on() {
        let offs = |v: Vec<i32>| ScalarBuffer::from(v);
        let data = Buffer::from_vec(b"abcdef".to_vec());
        assert!(binary(offs(vec![0, 2, 6]), data.clone()).is_ok());
        assert!(binary(offs(vec![-1, 2, 6]), data.clone()).is_err());
        assert!(binary(offs(vec![0, 4, 2]), data.clone()).is_err());
        assert!(binary(offs(vec![0, 2, 7]), data.clone()).is_err());
        assert!(binary(offs(vec![]), data.clone()).is_err());
        let ok = binary(offs(vec![0, 2, 2, 6]), data).unwrap();
        assert_eq!(
            (ok.value(0), ok.value(1), ok.value(2)),
            (&b"ab"[..], &b""[..], &b"cdef"[..])
        );
    }

    #[test]
    fn scalars_need_whole_aligned_values() {
        let buf = Buffer::from_vec(vec![0u64; 4]);
        assert!(scalars::<u64>(buf.clone(), 4).is_some());
        assert!(scalars::<u64>(buf.clone(), 5).is_none(), "too short");
        assert!(scalars::<u64>(buf.slice(4), 1).is_none(), "misaligned");
    }
}
