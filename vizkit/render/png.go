package render

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"os"
)

// EncodePNG encodes img as PNG (default compression).
func EncodePNG(img image.Image) ([]byte, error) {
	if img == nil {
		return nil, fmt.Errorf("render.EncodePNG: nil image")
	}
	if img.Bounds().Empty() {
		return nil, fmt.Errorf("render.EncodePNG: empty image (bounds %v)", img.Bounds())
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("render.EncodePNG: %w", err)
	}
	return buf.Bytes(), nil
}

// WritePNG encodes img as PNG and writes it to path (mode 0644, replacing any file).
func WritePNG(path string, img image.Image) error {
	data, err := EncodePNG(img)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("render.WritePNG: %w", err)
	}
	return nil
}

// DataURI encodes img as PNG and returns it as "data:image/png;base64,<standard
// base64 with padding>", usable as an <img src>.
func DataURI(img image.Image) (string, error) {
	data, err := EncodePNG(img)
	if err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(data), nil
}
