package imageio

import "encoding/binary"

// This is a deliberately small EXIF reader: it only finds the Orientation tag
// (0x0112) in IFD0 of the first "Exif" APP1 segment of a JPEG. It is hand-written
// instead of using github.com/rwcarlsen/goexif because that library is
// unmaintained since 2019, parses every tag of every IFD (allocating by counts
// taken from the file), and has had panics on malformed input reported against
// it; here every offset is bounds-checked and nothing is allocated, so Decode
// stays panic-free on arbitrary bytes (see FuzzDecode).

const exifOrientationTag = 0x0112

// jpegOrientation returns the EXIF Orientation (1–8) of the JPEG in data, or 1
// when there is none or it cannot be read.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return 1
	}
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return 1 // not at a marker: malformed, give up
		}
		marker := data[i+1]
		if marker == 0xFF { // fill byte before a marker
			i++
			continue
		}
		i += 2
		switch {
		case marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7):
			continue // markers without a length field
		case marker == 0xDA || marker == 0xD9:
			return 1 // start of scan / end of image: EXIF must come before
		}
		segLen := int(binary.BigEndian.Uint16(data[i:]))
		if segLen < 2 || i+segLen > len(data) {
			return 1
		}
		seg := data[i+2 : i+segLen]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			// Like PIL, only the first Exif segment counts.
			if o := tiffOrientation(seg[6:]); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
		i += segLen
	}
	return 1
}

// tiffOrientation reads the Orientation tag from IFD0 of the TIFF structure t
// (the EXIF payload). It returns 0 when absent or malformed.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	ifd := uint64(bo.Uint32(t[4:]))
	if ifd+2 > uint64(len(t)) {
		return 0
	}
	n := uint64(bo.Uint16(t[ifd:]))
	for k := uint64(0); k < n; k++ {
		e := ifd + 2 + 12*k
		if e+12 > uint64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != exifOrientationTag {
			continue
		}
		typ := bo.Uint16(t[e+2:])
		if bo.Uint32(t[e+4:]) < 1 { // count
			return 0
		}
		switch typ {
		case 3: // SHORT, stored in the first 2 bytes of the value field
			return int(bo.Uint16(t[e+8:]))
		case 4: // LONG (non-standard, but some writers use it)
			v := bo.Uint32(t[e+8:])
			if v > 8 {
				return 0
			}
			return int(v)
		default:
			return 0
		}
	}
	return 0
}
