// Package npy reads and writes NumPy .npy files of float32 arrays, the format
// cnnviz uses to hand raw results to Python (np.load) and to read golden
// fixtures.
//
// Both directions are implemented here (read.go says why the reader no longer
// uses codeberg.org/sbinet/npyio); the .npy header is a short, fully specified
// ASCII dict.
package npy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Write writes data with the given shape (row-major, C order) as a little-endian
// float32 .npy (format version 1.0) to w.
func Write(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v needs %d values, got %d", shape, n, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// Magic (6) + version (2) + header length (2) + header + '\n' is padded with
	// spaces to a multiple of 64 bytes.
	total := 10 + len(header) + 1
	if pad := (64 - total%64) % 64; pad > 0 {
		header += strings.Repeat(" ", pad)
	}
	header += "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("npy: header too long for shape %v", shape)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("\x93NUMPY\x01\x00")
	var hl [2]byte
	binary.LittleEndian.PutUint16(hl[:], uint16(len(header)))
	bw.Write(hl[:])
	bw.WriteString(header)
	var buf [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
		bw.Write(buf[:])
	}
	return bw.Flush()
}

// WriteFile writes a float32 .npy file (see Write).
func WriteFile(path string, shape []int, data []float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, shape, data); err != nil {
		f.Close()
		return fmt.Errorf("npy %s: %w", path, err)
	}
	return f.Close()
}

// Read reads a .npy file holding float32 or float64 values (any rank, C order,
// format version 1.0, 2.0 or 3.0), returning its shape and the values as
// float32. The header is validated before anything is allocated: at most
// [MaxHeaderBytes] of header and [MaxElements] values; when r is an io.Seeker
// (a file, a bytes.Reader) the declared size is checked against the bytes
// present, and otherwise memory grows only with the data actually read.
// Trailing bytes after the array are an error.
func Read(r io.Reader) (shape []int, data []float32, err error) {
	total := int64(-1)
	if s, ok := r.(io.Seeker); ok {
		if cur, err := s.Seek(0, io.SeekCurrent); err == nil {
			if end, err := s.Seek(0, io.SeekEnd); err == nil {
				if _, err := s.Seek(cur, io.SeekStart); err == nil {
					total = end - cur
				}
			}
		}
	}
	return read(r, total)
}

// read reads a .npy stream of total bytes (-1: unknown).
func read(r io.Reader, total int64) ([]int, []float32, error) {
	cr := &countingReader{r: r}
	h, err := readHeader(cr)
	if err != nil {
		return nil, nil, err
	}
	avail := int64(-1)
	if total >= 0 {
		avail = total - cr.n
	}
	data, err := readData(cr, h, avail)
	if err != nil {
		return nil, nil, err
	}
	return h.shape, data, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ReadFile reads a .npy file (see Read); errors name the file.
func ReadFile(path string) (shape []int, data []float32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	shape, data, err = read(bufio.NewReaderSize(f, 1<<16), st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return shape, data, nil
}
