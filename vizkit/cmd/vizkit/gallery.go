package main

// The data-set gallery: self-contained, paged HTML.

import (
	"encoding/base64"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
)

// galleryPageName is page k's file name (k from 1): gallery.html, gallery-2.html, …
func galleryPageName(k int) string {
	if k == 1 {
		return "gallery.html"
	}
	return fmt.Sprintf("gallery-%d.html", k)
}

// writeGallery writes the gallery pages of s (rows sorted) into dir, pageSize
// images per page, and returns their paths. Each page is self-contained
// (thumbnails embedded as PNG data URIs, read from images/<rel>/thumb_*.png;
// inline CSS, no scripts) and shows the run's description, the aggregates
// (mean and 95% interval), the skipped files, page links, and per image: the
// input thumbnail, the top-k classes, the target, one thumbnail per method with
// its metrics, and a link to images/<rel>/index.html. Stale pages beyond the
// last are removed.
func writeGallery(dir string, s *summary, pageSize int) ([]string, error) {
	pages := max(1, (len(s.Rows)+pageSize-1)/pageSize)
	var paths []string
	for k := 1; k <= pages; k++ {
		rows := s.Rows[min((k-1)*pageSize, len(s.Rows)):min(k*pageSize, len(s.Rows))]
		page := galleryPage(dir, s, rows, k, pages, (k-1)*pageSize)
		p := filepath.Join(dir, galleryPageName(k))
		if err := writeFileAtomic(p, []byte(page)); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	for k := pages + 1; ; k++ {
		p := filepath.Join(dir, galleryPageName(k))
		if _, err := os.Stat(p); err != nil {
			break
		}
		os.Remove(p)
	}
	return paths, nil
}

func thumbURI(dir, rel, name string) string {
	data, err := os.ReadFile(filepath.Join(dir, dsImagesDir, filepath.FromSlash(rel), name))
	if err != nil {
		return ""
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(data)
}

// escapePath escapes each segment of a slash path for an href.
func escapePath(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		parts[i] = strings.NewReplacer("%", "%25", "#", "%23", "?", "%3F", " ", "%20", "\"", "%22").Replace(p)
	}
	return strings.Join(parts, "/")
}

func galleryPage(dir string, s *summary, rows []summaryRow, k, pages, offset int) string {
	e := html.EscapeString
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	fmt.Fprintf(&b, "<title>cnnviz gallery — page %d of %d</title>\n", k, pages)
	b.WriteString(`<style>
body{margin:20px auto;max-width:1400px;padding:0 16px;color:#222;background:#fff;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:14px}
h1{font-weight:600;font-size:22px}h2{font-weight:600;font-size:17px;margin-top:22px}
table{border-collapse:collapse}td,th{border-bottom:1px solid #e4e4e4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:6px 10px;border-radius:4px}
.grid td{padding:6px}.grid img{display:block;border:1px solid #ddd;height:112px;width:auto;max-width:448px}
.cap{font-size:12px;color:#555;max-width:140px}.topk{font-size:12px;margin:0;padding-left:16px}
.nav a,.nav b{margin-right:8px}
</style>
</head>
<body>
`)
	fmt.Fprintf(&b, "<h1>cnnviz gallery</h1>\n<p>%s, backend %s; methods %s. %d images explained, %d skipped",
		e(s.Model), e(s.Backend), e(strings.Join(s.Methods, ", ")), len(s.Rows), len(s.Skipped))
	if s.Shard != "" {
		fmt.Fprintf(&b, " (shard %s)", e(s.Shard))
	}
	if s.MergedFrom > 0 {
		fmt.Fprintf(&b, " (merged from %d runs)", s.MergedFrom)
	}
	b.WriteString(".</p>\n")
	if s.Random {
		b.WriteString("<p class=\"warn\">Random weights: this network was never trained. The maps show how the methods work, not what a trained network sees.</p>\n")
	}
	nav := func() {
		if pages < 2 {
			return
		}
		b.WriteString("<p class=\"nav\">Pages: ")
		for p := 1; p <= pages; p++ {
			if p == k {
				fmt.Fprintf(&b, "<b>%d</b>", p)
			} else {
				fmt.Fprintf(&b, "<a href=\"%s\">%d</a>", galleryPageName(p), p)
			}
		}
		b.WriteString("</p>\n")
	}
	if k == 1 {
		if len(s.Aggregates) > 0 {
			b.WriteString("<h2>Aggregates</h2>\n<table><tr><th>column</th><th class=\"num\">n</th><th class=\"num\">mean</th><th class=\"num\">95% interval</th></tr>\n")
			for _, a := range s.Aggregates {
				fmt.Fprintf(&b, "<tr><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%.4g</td><td class=\"num\">%s</td></tr>\n",
					e(a.Name), a.N, a.Mean, ciText(a))
			}
			b.WriteString("</table>\n<p class=\"cap\" style=\"max-width:none\">Interval: mean ± t(0.975, n−1)·s/√n. Scores are softmax probabilities; times in milliseconds per image.</p>\n")
		}
		if len(s.Skipped) > 0 {
			fmt.Fprintf(&b, "<h2>Skipped files (%d)</h2>\n<table><tr><th>file</th><th>reason</th></tr>\n", len(s.Skipped))
			for _, sk := range s.Skipped {
				fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td></tr>\n", e(sk.Rel), e(sk.Reason))
			}
			b.WriteString("</table>\n")
		}
	}
	fmt.Fprintf(&b, "<h2>Images %d–%d of %d</h2>\n", min(offset+1, len(s.Rows)), offset+len(rows), len(s.Rows))
	nav()
	b.WriteString("<table class=\"grid\">\n<tr><th>#</th><th>input</th><th>top classes</th>")
	for _, m := range s.Methods {
		fmt.Fprintf(&b, "<th>%s</th>", e(m))
	}
	b.WriteString("</tr>\n")
	for j, r := range rows {
		link := dsImagesDir + "/" + escapePath(r.Rel) + "/index.html"
		fmt.Fprintf(&b, "<tr><td class=\"num\">%d</td><td><a href=\"%s\">", offset+j+1, link)
		if uri := thumbURI(dir, r.Rel, "thumb_input.png"); uri != "" {
			fmt.Fprintf(&b, "<img src=\"%s\" alt=\"%s\">", uri, e(r.Rel))
		}
		fmt.Fprintf(&b, "</a><div class=\"cap\"><a href=\"%s\">%s</a></div></td>\n<td><ol class=\"topk\">", link, e(r.Rel))
		for _, cp := range r.TopK {
			fmt.Fprintf(&b, "<li>%s <span class=\"num\">%.1f%%</span></li>", e(cp.Label), 100*cp.Prob)
		}
		fmt.Fprintf(&b, "</ol><div class=\"cap\">target %s (%.1f%%)</div></td>\n", e(r.TargetLabel), 100*r.TargetScore)
		for _, m := range s.Methods {
			b.WriteString("<td>")
			var mr *methodRow
			for i := range r.Methods {
				if r.Methods[i].Name == m {
					mr = &r.Methods[i]
				}
			}
			if uri := thumbURI(dir, r.Rel, "thumb_"+m+".png"); uri != "" {
				fmt.Fprintf(&b, "<a href=\"%s\"><img src=\"%s\" alt=\"%s\"></a>", link, uri, e(m))
			}
			if mr != nil {
				var parts []string
				for _, f := range metricFields {
					if v := f.get(mr); v != nil {
						parts = append(parts, fmt.Sprintf("%s %.3g", strings.TrimSuffix(strings.TrimSuffix(f.name, "_auc"), "_combined"), *v))
					}
				}
				parts = append(parts, fmt.Sprintf("%.0f ms", mr.Ms))
				fmt.Fprintf(&b, "<div class=\"cap\">%s</div>", e(strings.Join(parts, " · ")))
			}
			b.WriteString("</td>\n")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	nav()
	b.WriteString("</body>\n</html>\n")
	return b.String()
}

func ciText(a aggregate) string {
	if a.N < 2 {
		return "—"
	}
	return fmt.Sprintf("[%.4g, %.4g]", a.Lo, a.Hi)
}
