"""G.711 decode: every input route (bytes, bytearray, memoryview, arrays of any layout) and
both lookup paths (one code per lookup below the cutoff, two above it) give the same samples.

The 256-entry tables are checked against audioop and the G.711 formula in test_g711.py;
here they are the oracle for the faster paths built on top of them.
"""
import numpy as np
import pytest

from labkit.codecs import g711
from labkit.codecs.g711 import alaw_decode, ulaw_decode

LAWS = [pytest.param(ulaw_decode, g711._ULAW_DEC, id="ulaw"),
        pytest.param(alaw_decode, g711._ALAW_DEC, id="alaw")]
CUT = g711._PAIR_CUTOFF
SIZES = sorted({n for n in (0, 1, 2, 3, 160, CUT - 2, CUT - 1, CUT, CUT + 1, CUT + 2, 4097, 48_000)
                if n >= 0})


def _codes(n, seed=1):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


@pytest.mark.parametrize("decode, table", LAWS)
@pytest.mark.parametrize("n", SIZES)
def test_every_buffer_type_and_length_decodes_like_the_single_table(decode, table, n):
    codes = _codes(n)
    want = table[codes]
    for data in (codes, codes.tobytes(), bytearray(codes.tobytes()), memoryview(codes.tobytes())):
        out = decode(data)
        assert out.dtype == np.int16 and out.shape == (n,), type(data).__name__
        assert np.array_equal(out, want), f"{type(data).__name__} of {n} codes"


@pytest.mark.parametrize("decode, table", LAWS)
@pytest.mark.parametrize("n", [max(CUT - 1, 0), CUT, 5001, 5002])
def test_unaligned_buffer(decode, table, n):
    # codes starting at an odd address: the uint16 pair view is then unaligned
    raw = np.frombuffer(b"\x00" + _codes(n).tobytes(), np.uint8)[1:]
    assert raw.ctypes.data % 2 == 1
    assert np.array_equal(decode(raw), table[raw])


@pytest.mark.parametrize("decode, table", LAWS)
@pytest.mark.parametrize("n", [40, 6000])
def test_strided_memoryview_decodes_its_bytes_in_order(decode, table, n):
    codes = _codes(2 * n)
    view = memoryview(codes)[::2]                       # not C-contiguous: no direct buffer
    assert not view.c_contiguous
    assert np.array_equal(decode(view), table[codes[::2]])
    assert np.array_equal(decode(view), decode(view.tobytes()))


@pytest.mark.parametrize("decode, table", LAWS)
@pytest.mark.parametrize("shape", [(7, 9), (50, 60), (51, 61), (4, 5, 300)])
def test_multidimensional_layouts_keep_their_shape(decode, table, shape):
    codes = _codes(int(np.prod(shape))).reshape(shape)
    layouts = {
        "C order": codes,
        "Fortran order": np.asfortranarray(codes),
        "reversed": codes[..., ::-1],
        "every other column": codes[..., ::2],
        "transposed": codes.T,
    }
    for name, arr in layouts.items():
        out = decode(arr)
        assert out.shape == arr.shape, name
        assert np.array_equal(out, table[arr]), name


@pytest.mark.parametrize("decode, table", LAWS)
@pytest.mark.parametrize("n", [160, 10_000, 10_001])
def test_output_is_a_fresh_writeable_array(decode, table, n):
    codes = _codes(n)
    out = decode(codes.tobytes())
    assert out.flags.writeable and out.flags.c_contiguous
    assert not np.shares_memory(out, table) and not np.shares_memory(out, codes)
    out[:] = 0                                          # changing it changes nothing else
    assert np.array_equal(decode(codes), table[codes])


@pytest.mark.parametrize("decode, table", LAWS)
def test_bytes_subclass_and_zero_d(decode, table):
    class Payload(bytes):
        pass
    codes = _codes(3000)
    assert np.array_equal(decode(Payload(codes.tobytes())), table[codes])
    assert int(decode(np.uint8(0x55))) == int(table[0x55])


@pytest.mark.parametrize("decode", [ulaw_decode, alaw_decode])
def test_bad_code_arrays_are_refused_clearly(decode):
    with pytest.raises(TypeError, match="uint8 codes or bytes, got dtype int64"):
        decode([1, 2, 3])
    with pytest.raises(TypeError, match="uint8 codes or bytes, got dtype float32"):
        decode(np.zeros(5000, np.float32))
    with pytest.raises(TypeError, match="got dtype <U"):
        decode("\x00\x01")
