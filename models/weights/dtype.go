package weights

import (
	"encoding/binary"
	"math"
)

// elemType describes how one stored element is decoded into a float32.
// Stored values are always little-endian (safetensors mandates it; PyTorch
// checkpoints are checked for it).
type elemType struct {
	// name is the dtype as the format spells it ("F16", "torch.HalfStorage").
	name string
	// size is the number of bytes per element.
	size int
	// decode converts the element at b[0:size] to float32.
	decode func(b []byte) float32
}

func decodeF32(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
func decodeF64(b []byte) float32 { return float32(math.Float64frombits(binary.LittleEndian.Uint64(b))) }
func decodeF16(b []byte) float32 { return halfToFloat32(binary.LittleEndian.Uint16(b)) }
func decodeBF16(b []byte) float32 {
	return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
}
func decodeI64(b []byte) float32 { return float32(int64(binary.LittleEndian.Uint64(b))) }
func decodeI32(b []byte) float32 { return float32(int32(binary.LittleEndian.Uint32(b))) }
func decodeI16(b []byte) float32 { return float32(int16(binary.LittleEndian.Uint16(b))) }
func decodeI8(b []byte) float32  { return float32(int8(b[0])) }
func decodeU64(b []byte) float32 { return float32(binary.LittleEndian.Uint64(b)) }
func decodeU32(b []byte) float32 { return float32(binary.LittleEndian.Uint32(b)) }
func decodeU16(b []byte) float32 { return float32(binary.LittleEndian.Uint16(b)) }
func decodeU8(b []byte) float32  { return float32(b[0]) }
func decodeBool(b []byte) float32 {
	if b[0] != 0 {
		return 1
	}
	return 0
}

// halfToFloat32 converts IEEE 754 binary16 bits to a float32, exactly
// (every half value, subnormals, infinities and NaNs included, is representable).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0: // signed zero
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 0x1f: // Inf or NaN (payload kept)
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// decodeInto converts len(dst) consecutive elements of type et from src
// (len(src) must be len(dst)*et.size) into dst.
func decodeInto(dst []float32, src []byte, et *elemType) {
	if et.size == 4 && et.name == dtypeF32.name {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return
	}
	for i := range dst {
		dst[i] = et.decode(src[i*et.size:])
	}
}

var (
	dtypeF32 = &elemType{"F32", 4, decodeF32}
	dtypeF64 = &elemType{"F64", 8, decodeF64}
	dtypeF16 = &elemType{"F16", 2, decodeF16}
	dtypeBF  = &elemType{"BF16", 2, decodeBF16}
)

// safetensorsDTypes maps the safetensors dtype names this package reads to their
// decoders. Floating types are converted to float32 (F64 with rounding); integer
// and boolean tensors (e.g. BatchNorm's num_batches_tracked, I64) are converted to
// float32 too, exactly for magnitudes up to 2^24. Unlisted dtypes (F8_*, C64, ...)
// are rejected.
var safetensorsDTypes = map[string]*elemType{
	"F32":  dtypeF32,
	"F64":  dtypeF64,
	"F16":  dtypeF16,
	"BF16": dtypeBF,
	"I64":  {"I64", 8, decodeI64},
	"I32":  {"I32", 4, decodeI32},
	"I16":  {"I16", 2, decodeI16},
	"I8":   {"I8", 1, decodeI8},
	"U64":  {"U64", 8, decodeU64},
	"U32":  {"U32", 4, decodeU32},
	"U16":  {"U16", 2, decodeU16},
	"U8":   {"U8", 1, decodeU8},
	"BOOL": {"BOOL", 1, decodeBool},
}

// torchStorageTypes maps the pickled storage classes of PyTorch checkpoints
// (module "torch") to decoders; same conversions as safetensorsDTypes.
var torchStorageTypes = map[string]*elemType{
	"FloatStorage":    {"torch.FloatStorage", 4, decodeF32},
	"DoubleStorage":   {"torch.DoubleStorage", 8, decodeF64},
	"HalfStorage":     {"torch.HalfStorage", 2, decodeF16},
	"BFloat16Storage": {"torch.BFloat16Storage", 2, decodeBF16},
	"LongStorage":     {"torch.LongStorage", 8, decodeI64},
	"IntStorage":      {"torch.IntStorage", 4, decodeI32},
	"ShortStorage":    {"torch.ShortStorage", 2, decodeI16},
	"CharStorage":     {"torch.CharStorage", 1, decodeI8},
	"ByteStorage":     {"torch.ByteStorage", 1, decodeU8},
	"BoolStorage":     {"torch.BoolStorage", 1, decodeBool},
}

// numElements returns the product of shape, or ok=false if a dimension is
// negative or the product exceeds limit.
func numElements(shape []int, limit int64) (n int64, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > limit/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	if n > limit {
		return 0, false
	}
	return n, true
}
