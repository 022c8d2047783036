// Package heatmap holds 2-D float maps and the numerics every method shares:
// min-max scaling as pytorch-grad-cam's scale_cam_image, bilinear and nearest
// resizing as PyTorch's interpolate and cv2.resize, value ranges and
// statistics. It draws nothing: package render colours these maps, and the
// compute packages (engine, cam, attr, actmax, metrics) use them without
// depending on any drawing code.
package heatmap

import (
	"fmt"
	"math"
	"strconv"
)

// MaxPixels bounds the size of any map or image this package creates (H·W), so that a
// mistaken size returns an error instead of exhausting memory: 1<<27 pixels
// (512 MiB as RGBA).
const MaxPixels = 1 << 27

// Map is a 2-D float32 map of H rows and W columns stored row-major:
// the value at row y, column x is Data[y*W+x]. A valid Map has H ≥ 1, W ≥ 1 and
// len(Data) == H*W. Values may be NaN or ±Inf; rendering functions treat them as
// "bad" values (see [Colorize]).
type Map struct {
	H, W int
	Data []float32
}

// NewMap returns the H×W map backed by data (row-major, not copied).
// It fails if h or w is not positive, h·w exceeds [MaxPixels], or len(data) != h·w.
func NewMap(h, w int, data []float32) (Map, error) {
	m := Map{H: h, W: w, Data: data}
	if err := m.Validate(); err != nil {
		return Map{}, err
	}
	return m, nil
}

// Zeros returns a new H×W map of zeros.
func Zeros(h, w int) (Map, error) {
	if err := CheckSize(h, w); err != nil {
		return Map{}, fmt.Errorf("heatmap.Zeros: %w", err)
	}
	return Map{H: h, W: w, Data: make([]float32, h*w)}, nil
}

// MapFromFloat64 returns a new H×W map holding data converted to float32 (row-major).
func MapFromFloat64(h, w int, data []float64) (Map, error) {
	if err := CheckSize(h, w); err != nil {
		return Map{}, fmt.Errorf("heatmap.MapFromFloat64: %w", err)
	}
	if len(data) != h*w {
		return Map{}, fmt.Errorf("heatmap.MapFromFloat64: len(data)=%d, want H*W=%d*%d=%d", len(data), h, w, h*w)
	}
	out := make([]float32, len(data))
	for i, v := range data {
		out[i] = float32(v)
	}
	return Map{H: h, W: w, Data: out}, nil
}

// CheckSize returns an error unless h and w are positive and h·w ≤ [MaxPixels].
func CheckSize(h, w int) error {
	if h <= 0 || w <= 0 {
		return fmt.Errorf("size %dx%d: height and width must be positive", h, w)
	}
	if h > MaxPixels/w {
		return fmt.Errorf("size %dx%d exceeds the limit of %d pixels", h, w, MaxPixels)
	}
	return nil
}

// Validate reports whether m is well formed: H ≥ 1, W ≥ 1, H·W ≤ [MaxPixels] and
// len(Data) == H·W.
func (m Map) Validate() error {
	if err := CheckSize(m.H, m.W); err != nil {
		return fmt.Errorf("heatmap.Map: %w", err)
	}
	if len(m.Data) != m.H*m.W {
		return fmt.Errorf("heatmap.Map: len(Data)=%d, want H*W=%d*%d=%d", len(m.Data), m.H, m.W, m.H*m.W)
	}
	return nil
}

// At returns the value at row y, column x; both must be in range.
func (m Map) At(y, x int) float32 { return m.Data[y*m.W+x] }

// Clone returns a deep copy of m.
func (m Map) Clone() Map {
	return Map{H: m.H, W: m.W, Data: append([]float32(nil), m.Data...)}
}

// Range is a closed value interval [Min, Max] used to map values to colours:
// t = (v - Min) / (Max - Min).
//
// The zero value Range{} means "automatic": functions that take a Range replace it
// by the map's finite min and max ([Map.Range]).
type Range struct {
	Min, Max float64
}

// IsAuto reports whether r is the zero Range, which requests automatic min–max scaling.
func (r Range) IsAuto() bool { return r.Min == 0 && r.Max == 0 }

// Validate fails if Min or Max is not finite or Max < Min. Min == Max is allowed
// (a degenerate range renders every finite value as the colormap's low end).
func (r Range) Validate() error {
	if !isFinite(r.Min) || !isFinite(r.Max) {
		return fmt.Errorf("heatmap.Range: bounds must be finite, got [%v, %v]", r.Min, r.Max)
	}
	if r.Max < r.Min {
		return fmt.Errorf("heatmap.Range: Max (%v) < Min (%v)", r.Max, r.Min)
	}
	return nil
}

// Norm maps v to t = (v-Min)/(Max-Min), clamped to [0, 1]. A degenerate range
// (Max == Min) gives 0, like matplotlib's Normalize. A NaN v gives NaN.
func (r Range) Norm(v float64) float64 {
	if math.IsNaN(v) {
		return v
	}
	span := r.Max - r.Min
	if !(span > 0) {
		return 0
	}
	t := (v - r.Min) / span
	return clamp01(t)
}

// String formats r as "[min, max]" with 4 significant digits.
func (r Range) String() string {
	return "[" + FormatValue(r.Min) + ", " + FormatValue(r.Max) + "]"
}

// FormatValue formats v compactly with 4 significant digits ("0.1235", "1.5e+04", "NaN").
func FormatValue(v float64) string {
	if v == 0 {
		return "0" // also turns -0 into "0"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// Range returns the minimum and maximum of m's finite values; ok is false (and r the
// zero Range) if m has no finite value. NaN and ±Inf are ignored.
func (m Map) Range() (r Range, ok bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range m.Data {
		f := float64(v)
		if !isFinite(f) {
			continue
		}
		lo = math.Min(lo, f)
		hi = math.Max(hi, f)
	}
	if lo > hi {
		return Range{}, false
	}
	return Range{Min: lo, Max: hi}, true
}

// Diverging returns the range [-a, a] centred on zero with a = max |v| over m's
// finite values, so that 0 maps to t = 0.5, the neutral middle of a diverging
// colormap such as [RdBuR]. A map with no non-zero finite value gives [-1, 1], so its
// zeros still render as the neutral colour.
func Diverging(m Map) Range {
	a := 0.0
	for _, v := range m.Data {
		f := math.Abs(float64(v))
		if isFinite(f) && f > a {
			a = f
		}
	}
	if a == 0 {
		a = 1
	}
	return Range{Min: -a, Max: a}
}

// Stats summarises a map. Min, Max, Mean and Std (population standard deviation) are
// over the finite values only and are 0 when there are none.
type Stats struct {
	Min, Max, Mean, Std float64
	Finite              int // number of finite values
	NaN                 int // number of NaN values
	PosInf, NegInf      int // number of +Inf and -Inf values
}

// NonFinite returns NaN + PosInf + NegInf.
func (s Stats) NonFinite() int { return s.NaN + s.PosInf + s.NegInf }

// Stats computes the summary of m's values (two-pass mean/variance in float64).
func (m Map) Stats() Stats {
	var s Stats
	sum := 0.0
	s.Min, s.Max = math.Inf(1), math.Inf(-1)
	for _, v := range m.Data {
		f := float64(v)
		switch {
		case math.IsNaN(f):
			s.NaN++
		case math.IsInf(f, 1):
			s.PosInf++
		case math.IsInf(f, -1):
			s.NegInf++
		default:
			s.Finite++
			sum += f
			s.Min = math.Min(s.Min, f)
			s.Max = math.Max(s.Max, f)
		}
	}
	if s.Finite == 0 {
		s.Min, s.Max = 0, 0
		return s
	}
	s.Mean = sum / float64(s.Finite)
	ss := 0.0
	for _, v := range m.Data {
		f := float64(v)
		if isFinite(f) {
			d := f - s.Mean
			ss += d * d
		}
	}
	s.Std = math.Sqrt(ss / float64(s.Finite))
	return s
}

// ScaleCAM returns a new map scaled like pytorch-grad-cam's scale_cam_image (without
// its resize): v' = (v - min) / (1e-7 + max(v - min)), computed in float32, so the
// result lies in [0, 1). min and max are over finite values only (numpy would turn
// the whole map into NaN); non-finite values stay non-finite. A map without finite
// values is returned as a copy.
func ScaleCAM(m Map) (Map, error) {
	if err := m.Validate(); err != nil {
		return Map{}, fmt.Errorf("heatmap.ScaleCAM: %w", err)
	}
	out := m.Clone()
	r, ok := m.Range()
	if !ok {
		return out, nil
	}
	lo := float32(r.Min)
	hi := float32(0)
	for i, v := range out.Data {
		out.Data[i] = v - lo
		if f := float64(out.Data[i]); isFinite(f) && out.Data[i] > hi {
			hi = out.Data[i]
		}
	}
	// numpy: 1e-7 + np.float32 scalar is a float64 scalar; dividing a float32 array by
	// it casts it back to float32.
	den := float32(1e-7 + float64(hi))
	for i, v := range out.Data {
		out.Data[i] = v / den
	}
	return out, nil
}

// SplitCHW splits a channels-first [C, H, W] array (row-major, len C·H·W) into C
// maps that share data's storage.
func SplitCHW(data []float32, c, h, w int) ([]Map, error) {
	if c <= 0 {
		return nil, fmt.Errorf("heatmap.SplitCHW: channel count %d must be positive", c)
	}
	if err := CheckSize(h, w); err != nil {
		return nil, fmt.Errorf("heatmap.SplitCHW: %w", err)
	}
	if len(data) != c*h*w {
		return nil, fmt.Errorf("heatmap.SplitCHW: len(data)=%d, want C*H*W=%d*%d*%d=%d", len(data), c, h, w, c*h*w)
	}
	maps := make([]Map, c)
	n := h * w
	for i := range maps {
		maps[i] = Map{H: h, W: w, Data: data[i*n : (i+1)*n : (i+1)*n]}
	}
	return maps, nil
}

// SplitHWC splits a channels-last [H, W, C] array (row-major, len H·W·C) into C new maps.
func SplitHWC(data []float32, h, w, c int) ([]Map, error) {
	if c <= 0 {
		return nil, fmt.Errorf("heatmap.SplitHWC: channel count %d must be positive", c)
	}
	if err := CheckSize(h, w); err != nil {
		return nil, fmt.Errorf("heatmap.SplitHWC: %w", err)
	}
	if len(data) != c*h*w {
		return nil, fmt.Errorf("heatmap.SplitHWC: len(data)=%d, want H*W*C=%d*%d*%d=%d", len(data), h, w, c, c*h*w)
	}
	maps := make([]Map, c)
	for i := range maps {
		maps[i] = Map{H: h, W: w, Data: make([]float32, h*w)}
	}
	for p := 0; p < h*w; p++ {
		for i := range maps {
			maps[i].Data[p] = data[p*c+i]
		}
	}
	return maps, nil
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func clamp01(t float64) float64 {
	if t < 0 {
		return 0
	}
	if t > 1 {
		return 1
	}
	return t
}
