// Package npy reads and writes NumPy .npy files of float32 arrays, the format
// cnnviz uses to hand raw results to Python (np.load) and to read golden
// fixtures.
//
// Reading uses codeberg.org/sbinet/npyio. Writing is done here because npyio's
// writer derives the shape from Go values (nested arrays or gonum matrices) and
// cannot write a flat []float32 with an N-d shape; the .npy v1.0 header is a
// short, fully specified ASCII dict, written below.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	npyio "codeberg.org/sbinet/npyio/npy"
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

// Read reads a .npy file holding float32 or float64 values (any rank, C order),
// returning its shape and the values as float32.
func Read(r io.Reader) (shape []int, data []float32, err error) {
	rd, err := npyio.NewReader(r)
	if err != nil {
		return nil, nil, err
	}
	if rd.Header.Descr.Fortran {
		return nil, nil, fmt.Errorf("npy: Fortran-order arrays are not supported")
	}
	shape = append([]int{}, rd.Header.Descr.Shape...)
	switch strings.Trim(rd.Header.Descr.Type, "'\"") {
	case "<f4", "|f4", "f4":
		err = rd.Read(&data)
	case "<f8", "f8":
		var d64 []float64
		err = rd.Read(&d64)
		data = make([]float32, len(d64))
		for i, v := range d64 {
			data[i] = float32(v)
		}
	default:
		return nil, nil, fmt.Errorf("npy: unsupported dtype %q (want float32 or float64)", rd.Header.Descr.Type)
	}
	if err != nil {
		return nil, nil, err
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		return nil, nil, fmt.Errorf("npy: header shape %v needs %d values, read %d", shape, n, len(data))
	}
	return shape, data, nil
}

// ReadFile reads a .npy file (see Read); errors name the file.
func ReadFile(path string) (shape []int, data []float32, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	shape, data, err = Read(bytes.NewReader(b))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return shape, data, nil
}
