package render

import (
	"errors"
	"fmt"
	"html"
	"image"
	"strconv"
	"strings"
)

// HTML builds a self-contained HTML fragment: no external CSS, JS, fonts or CDN;
// images are embedded as PNG data URIs and every element carries inline styles, so a
// fragment renders the same in a GoNB/Jupyter cell ([HTML.String]) and in a full page
// ([HTML.Page]). All text arguments are HTML-escaped; only [HTML.Raw] inserts markup.
//
// The zero value is ready to use; methods return the builder for chaining. A failure
// (e.g. a nil image) does not stop the build: it is rendered as a visible warning box
// in place of the element and reported by [HTML.Err].
type HTML struct {
	b    strings.Builder
	errs []error
}

// NewHTML returns an empty builder.
func NewHTML() *HTML { return &HTML{} }

const (
	styleFigure   = "margin:6px 8px 10px 0;display:inline-flex;flex-direction:column;align-items:center;vertical-align:top"
	styleCaption  = "font-size:12px;color:#555;margin-top:3px;max-width:100%;text-align:center;overflow-wrap:anywhere"
	stylePixel    = "image-rendering:crisp-edges;image-rendering:pixelated;"
	styleImg      = "max-width:100%;height:auto;"
	styleRow      = "display:flex;flex-wrap:wrap;align-items:flex-start;gap:4px 10px;margin:8px 0"
	styleTable    = "border-collapse:collapse;font-size:13px;margin:8px 0"
	styleCell     = "border:1px solid #ccc;padding:3px 8px"
	styleHeadCell = "border:1px solid #ccc;padding:3px 8px;background:#f0f0f0;text-align:left"
	styleWarning  = "background:#fff3cd;border:1px solid #e6c200;border-left:6px solid #e0a800;color:#4d3800;padding:8px 12px;margin:8px 0;border-radius:4px"
	fontStack     = "system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
)

// Heading appends <hN> with the escaped text; level is clamped to 1..6.
func (h *HTML) Heading(level int, text string) *HTML {
	level = min(max(level, 1), 6)
	fmt.Fprintf(&h.b, "<h%d style=\"margin:14px 0 6px\">%s</h%d>\n", level, html.EscapeString(text), level)
	return h
}

// Paragraph appends <p> with the escaped text (newlines become <br>).
func (h *HTML) Paragraph(text string) *HTML {
	esc := strings.ReplaceAll(html.EscapeString(text), "\n", "<br>")
	fmt.Fprintf(&h.b, "<p style=\"margin:6px 0\">%s</p>\n", esc)
	return h
}

// Image appends img as an embedded PNG inside a <figure> with an optional caption
// ("" for none). widthPx sets the displayed width (height keeps the aspect ratio);
// 0 means the natural width. When the image is shown at ≥ 2× its natural width it is
// drawn with image-rendering: pixelated, so small maps stay crisp. The image never
// overflows its container (max-width: 100%).
func (h *HTML) Image(img image.Image, caption string, widthPx int) *HTML {
	pix := false
	if img != nil && widthPx > 0 {
		pix = widthPx >= 2*img.Bounds().Dx()
	}
	h.figure(img, caption, widthPx, pix)
	return h
}

// FigureItem is one image of [HTML.Figure].
type FigureItem struct {
	Image   image.Image
	Caption string // optional, escaped
	WidthPx int    // displayed width; 0 means natural width
}

// FigureOptions configures [HTML.Figure].
type FigureOptions struct {
	// Title, if not "", is a bold line above the row.
	Title string
	// Pixelated draws every image with image-rendering: pixelated (for small tiles
	// shown enlarged, e.g. kernels).
	Pixelated bool
}

// Figure appends a row of captioned images that wraps onto further lines when it is
// wider than the page (CSS flex-wrap).
func (h *HTML) Figure(items []FigureItem, opts FigureOptions) *HTML {
	h.b.WriteString("<div>\n")
	if opts.Title != "" {
		fmt.Fprintf(&h.b, "<div style=\"font-weight:600;margin:8px 0 2px\">%s</div>\n", html.EscapeString(opts.Title))
	}
	fmt.Fprintf(&h.b, "<div style=\"%s\">\n", styleRow)
	for _, it := range items {
		h.figure(it.Image, it.Caption, it.WidthPx, opts.Pixelated)
	}
	h.b.WriteString("</div>\n</div>\n")
	return h
}

func (h *HTML) figure(img image.Image, caption string, widthPx int, pixelated bool) {
	if widthPx < 0 {
		h.fail(fmt.Errorf("render.HTML: image width %d must not be negative", widthPx))
		return
	}
	uri, err := DataURI(img)
	if err != nil {
		h.fail(fmt.Errorf("render.HTML: image %q: %w", caption, err))
		return
	}
	style := styleImg
	if pixelated {
		style += stylePixel
	}
	width := ""
	if widthPx > 0 {
		width = fmt.Sprintf(" width=\"%d\"", widthPx)
	}
	esc := html.EscapeString(caption)
	fmt.Fprintf(&h.b, "<figure style=\"%s\"><img src=\"%s\"%s alt=\"%s\" style=\"%s\">", styleFigure, uri, width, esc, style)
	if caption != "" {
		fmt.Fprintf(&h.b, "<figcaption style=\"%s\">%s</figcaption>", styleCaption, esc)
	}
	h.b.WriteString("</figure>\n")
}

// Table appends a table with a header row (may be empty) and body rows; rows may be
// ragged (missing cells render empty). Cells that parse as numbers are right-aligned.
func (h *HTML) Table(headers []string, rows [][]string) *HTML {
	ncol := len(headers)
	for _, r := range rows {
		ncol = max(ncol, len(r))
	}
	fmt.Fprintf(&h.b, "<table style=\"%s\">\n", styleTable)
	if len(headers) > 0 {
		h.b.WriteString("<thead><tr>")
		for i := 0; i < ncol; i++ {
			cell := ""
			if i < len(headers) {
				cell = headers[i]
			}
			fmt.Fprintf(&h.b, "<th style=\"%s\">%s</th>", styleHeadCell, html.EscapeString(cell))
		}
		h.b.WriteString("</tr></thead>\n")
	}
	h.b.WriteString("<tbody>\n")
	for _, r := range rows {
		h.b.WriteString("<tr>")
		for i := 0; i < ncol; i++ {
			cell := ""
			if i < len(r) {
				cell = r[i]
			}
			style := styleCell
			if _, err := strconv.ParseFloat(strings.TrimSpace(cell), 64); err == nil {
				style += ";text-align:right;font-variant-numeric:tabular-nums"
			}
			fmt.Fprintf(&h.b, "<td style=\"%s\">%s</td>", style, html.EscapeString(cell))
		}
		h.b.WriteString("</tr>\n")
	}
	h.b.WriteString("</tbody></table>\n")
	return h
}

// Warning appends a visible yellow box (role="alert") with the escaped text.
func (h *HTML) Warning(text string) *HTML {
	fmt.Fprintf(&h.b, "<div role=\"alert\" style=\"%s\">&#9888; %s</div>\n", styleWarning,
		strings.ReplaceAll(html.EscapeString(text), "\n", "<br>"))
	return h
}

// Raw appends markup verbatim. The caller is responsible for its safety and for
// keeping it self-contained.
func (h *HTML) Raw(markup string) *HTML {
	h.b.WriteString(markup)
	return h
}

func (h *HTML) fail(err error) {
	h.errs = append(h.errs, err)
	h.Warning(err.Error())
}

// Err returns the failures met while building (joined), or nil.
func (h *HTML) Err() error { return errors.Join(h.errs...) }

// String returns the fragment: one <div class="cnnviz"> with a sans-serif font and
// the appended elements. It sets no text or background colour, so it follows the
// notebook's theme (warnings carry their own colours).
func (h *HTML) String() string {
	return "<div class=\"cnnviz\" style=\"font-family:" + fontStack + ";line-height:1.4\">\n" + h.b.String() + "</div>\n"
}

// Page returns a complete HTML5 document (UTF-8) containing the fragment, with title
// (escaped) as its <title> and a small inline stylesheet (dark text on white,
// content at most 1200 px wide). Nothing is loaded from outside the document.
func (h *HTML) Page(title string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	fmt.Fprintf(&b, "<title>%s</title>\n", html.EscapeString(title))
	b.WriteString("<style>\n")
	b.WriteString("body{margin:24px auto;max-width:1200px;padding:0 16px;color:#222;background:#fff;font-family:" + fontStack + "}\n")
	b.WriteString("h1,h2,h3{font-weight:600}\nfigure img{border:1px solid #e4e4e4}\n")
	b.WriteString("</style>\n</head>\n<body>\n")
	b.WriteString(h.String())
	b.WriteString("</body>\n</html>\n")
	return b.String()
}
