package main

// summary.csv / summary.json of a data-set run (and of `vizkit merge`), and
// their aggregates.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// summaryVersion is the "version" field of summary.json and result.json.
const summaryVersion = 1

// classProb is one top-k entry.
type classProb struct {
	Class int     `json:"class"`
	Label string  `json:"label"`
	Prob  float64 `json:"prob"`
}

// methodRow is one method's result for one image. Metric fields are nil when
// not computed (no --metrics, not an attribution method, no box, box outside
// the crop).
type methodRow struct {
	Name string `json:"name"`
	// Layer is the CAM layer(s), "+"-joined ("" for non-CAM methods).
	Layer string `json:"layer,omitempty"`
	// Ms is the method's wall time for this image in milliseconds (a batched
	// method's batch time divided by the batch size).
	Ms float64 `json:"ms"`
	// Deletion and Insertion are RISE's AUCs (softmax probability, 32 steps,
	// baselines "zero" and "blur"); ConfChange is pytorch-grad-cam's
	// CamMultImageConfidenceChange (softmax); ROAD is ROADCombined (percentiles
	// 10…90, noise 0.01); see package vizkit/metrics.
	Deletion   *float64 `json:"deletion_auc,omitempty"`
	Insertion  *float64 `json:"insertion_auc,omitempty"`
	ConfChange *float64 `json:"conf_change,omitempty"`
	ROAD       *float64 `json:"road_combined,omitempty"`
	// Pointing is 1 (hit) or 0 (miss) of the pointing game (tolerance 15 px),
	// Energy the fraction of the map's mass in the box (metrics.EnergyInRegion).
	Pointing *float64 `json:"pointing_hit,omitempty"`
	Energy   *float64 `json:"energy_in_box,omitempty"`
}

// summaryRow is one image's line of the summary.
type summaryRow struct {
	// Path is the canonical (absolute) input path; Rel the path relative to
	// the inputs' common folder (outputs: images/<Rel>/).
	Path string `json:"path"`
	Rel  string `json:"rel"`
	// Width and Height are the original image's size in pixels.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Pred is the top-1 class, PredScore its softmax probability.
	Pred      int     `json:"pred"`
	PredLabel string  `json:"pred_label"`
	PredScore float64 `json:"pred_score"`
	// Target is the explained class (the --list class, --class, or Pred),
	// TargetScore its softmax probability.
	Target      int     `json:"target"`
	TargetLabel string  `json:"target_label"`
	TargetScore float64 `json:"target_score"`
	// Box is the --list box (original pixels), CropBox the same box in the
	// 224×224 network input (clipped; nil when outside it).
	Box     *[4]float64 `json:"box,omitempty"`
	CropBox *[4]int     `json:"crop_box,omitempty"`
	TopK    []classProb `json:"topk"`
	// ForwardMs is the batch's forward pass time divided by the batch size.
	ForwardMs float64     `json:"forward_ms"`
	Methods   []methodRow `json:"methods"`
}

// skippedFile is an input that was not explained, and why.
type skippedFile struct {
	Path   string `json:"path"`
	Rel    string `json:"rel"`
	Reason string `json:"reason"`
}

// aggregate is a column's mean with a 95% confidence interval.
type aggregate struct {
	Name string  `json:"name"`
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	// Lo and Hi bound the 95% interval of the mean: mean ± t(0.975, n−1)·s/√n
	// (Student's t; equal to the mean when n < 2).
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// summary is summary.json.
type summary struct {
	Version int `json:"version"`
	// Model describes the network and its weights; Backend the GoMLX backend.
	Model   string `json:"model"`
	Backend string `json:"backend"`
	// Config is the fingerprint of everything that changes results; merge
	// refuses shards whose Config differs.
	Config  string   `json:"config"`
	Methods []string `json:"methods"`
	Metrics bool     `json:"metrics"`
	// Shard is "i/n" for a shard, "" for a whole run; MergedFrom counts the
	// merged summaries (0 for a run).
	Shard      string `json:"shard,omitempty"`
	MergedFrom int    `json:"merged_from,omitempty"`
	// Random is set when the weights are random (the gallery warns).
	Random     bool          `json:"random,omitempty"`
	Rows       []summaryRow  `json:"rows"`
	Skipped    []skippedFile `json:"skipped"`
	Aggregates []aggregate   `json:"aggregates"`
}

// sortSummary orders rows and skipped files by Rel (then Path).
func sortSummary(s *summary) {
	sort.Slice(s.Rows, func(i, j int) bool {
		a, b := s.Rows[i], s.Rows[j]
		return a.Rel < b.Rel || a.Rel == b.Rel && a.Path < b.Path
	})
	sort.Slice(s.Skipped, func(i, j int) bool {
		a, b := s.Skipped[i], s.Skipped[j]
		return a.Rel < b.Rel || a.Rel == b.Rel && a.Path < b.Path
	})
}

// csvColumn is one summary.csv column: its name and how to read it from a
// row (ok false leaves the cell empty).
type csvColumn struct {
	name string
	get  func(r *summaryRow) (string, bool)
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// csvColumns lists summary.csv's columns: path, rel, width, height, pred,
// pred_label, pred_score, target, target_label, target_score, box (x0 y0 x1
// y1, original pixels), forward_ms, then per method M (in --methods order)
// M_ms and, with --metrics on attribution methods, M_deletion_auc, M_insertion_auc,
// M_conf_change, M_road_combined and, when some image has a box,
// M_pointing_hit, M_energy_in_box (a metric column appears when at least
// one row has the value; empty cells where a row has none).
func csvColumns(s *summary) []csvColumn {
	str := func(name string, f func(r *summaryRow) string) csvColumn {
		return csvColumn{name, func(r *summaryRow) (string, bool) { return f(r), true }}
	}
	cols := []csvColumn{
		str("path", func(r *summaryRow) string { return r.Path }),
		str("rel", func(r *summaryRow) string { return r.Rel }),
		str("width", func(r *summaryRow) string { return strconv.Itoa(r.Width) }),
		str("height", func(r *summaryRow) string { return strconv.Itoa(r.Height) }),
		str("pred", func(r *summaryRow) string { return strconv.Itoa(r.Pred) }),
		str("pred_label", func(r *summaryRow) string { return r.PredLabel }),
		str("pred_score", func(r *summaryRow) string { return fmtF(r.PredScore) }),
		str("target", func(r *summaryRow) string { return strconv.Itoa(r.Target) }),
		str("target_label", func(r *summaryRow) string { return r.TargetLabel }),
		str("target_score", func(r *summaryRow) string { return fmtF(r.TargetScore) }),
		{"box", func(r *summaryRow) (string, bool) {
			if r.Box == nil {
				return "", false
			}
			return fmt.Sprintf("%s %s %s %s", fmtF(r.Box[0]), fmtF(r.Box[1]), fmtF(r.Box[2]), fmtF(r.Box[3])), true
		}},
		str("forward_ms", func(r *summaryRow) string { return fmtF(r.ForwardMs) }),
	}
	for _, m := range s.Methods {
		m := m
		find := func(r *summaryRow) *methodRow {
			for i := range r.Methods {
				if r.Methods[i].Name == m {
					return &r.Methods[i]
				}
			}
			return nil
		}
		cols = append(cols, csvColumn{m + "_ms", func(r *summaryRow) (string, bool) {
			if mr := find(r); mr != nil {
				return fmtF(mr.Ms), true
			}
			return "", false
		}})
		for _, f := range metricFields {
			f := f
			if !anyMetric(s, m, f.get) {
				continue
			}
			cols = append(cols, csvColumn{m + "_" + f.name, func(r *summaryRow) (string, bool) {
				if mr := find(r); mr != nil {
					if v := f.get(mr); v != nil {
						return fmtF(*v), true
					}
				}
				return "", false
			}})
		}
	}
	return cols
}

// anyMetric reports whether some row has metric get for method m.
func anyMetric(s *summary, m string, get func(*methodRow) *float64) bool {
	for i := range s.Rows {
		for j := range s.Rows[i].Methods {
			if s.Rows[i].Methods[j].Name == m && get(&s.Rows[i].Methods[j]) != nil {
				return true
			}
		}
	}
	return false
}

// metricFields are the per-method metric columns, in CSV order.
var metricFields = []struct {
	name, title string
	get         func(m *methodRow) *float64
}{
	{"deletion_auc", "deletion AUC (lower is better)", func(m *methodRow) *float64 { return m.Deletion }},
	{"insertion_auc", "insertion AUC (higher is better)", func(m *methodRow) *float64 { return m.Insertion }},
	{"conf_change", "confidence change (higher is better)", func(m *methodRow) *float64 { return m.ConfChange }},
	{"road_combined", "ROAD combined (higher is better)", func(m *methodRow) *float64 { return m.ROAD }},
	{"pointing_hit", "pointing game hit rate", func(m *methodRow) *float64 { return m.Pointing }},
	{"energy_in_box", "energy in box", func(m *methodRow) *float64 { return m.Energy }},
}

// computeAggregates fills s.Aggregates: the mean and 95% interval of
// pred_score, target_score, forward_ms and, per method, M_ms and every
// metric that at least one row has.
func computeAggregates(s *summary) {
	s.Aggregates = nil
	add := func(name string, get func(r *summaryRow) (float64, bool)) {
		var v []float64
		for i := range s.Rows {
			if x, ok := get(&s.Rows[i]); ok && !math.IsNaN(x) && !math.IsInf(x, 0) {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			return
		}
		s.Aggregates = append(s.Aggregates, meanCI(name, v))
	}
	add("pred_score", func(r *summaryRow) (float64, bool) { return r.PredScore, true })
	add("target_score", func(r *summaryRow) (float64, bool) { return r.TargetScore, true })
	add("forward_ms", func(r *summaryRow) (float64, bool) { return r.ForwardMs, true })
	for _, m := range s.Methods {
		m := m
		find := func(r *summaryRow) *methodRow {
			for i := range r.Methods {
				if r.Methods[i].Name == m {
					return &r.Methods[i]
				}
			}
			return nil
		}
		add(m+"_ms", func(r *summaryRow) (float64, bool) {
			if mr := find(r); mr != nil {
				return mr.Ms, true
			}
			return 0, false
		})
		for _, f := range metricFields {
			f := f
			add(m+"_"+f.name, func(r *summaryRow) (float64, bool) {
				if mr := find(r); mr != nil && f.get(mr) != nil {
					return *f.get(mr), true
				}
				return 0, false
			})
		}
	}
}

// tQuantile975 is Student's t 0.975 quantile for 1…30 degrees of freedom.
var tQuantile975 = [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

func meanCI(name string, v []float64) aggregate {
	n := len(v)
	mean := 0.0
	for _, x := range v {
		mean += x
	}
	mean /= float64(n)
	a := aggregate{Name: name, N: n, Mean: mean, Lo: mean, Hi: mean}
	if n < 2 {
		return a
	}
	ss := 0.0
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(ss / float64(n-1))
	t := 1.96
	if n-1 <= len(tQuantile975) {
		t = tQuantile975[n-2]
	}
	half := t * sd / math.Sqrt(float64(n))
	a.Lo, a.Hi = mean-half, mean+half
	return a
}

// writeSummary writes OUT/summary.json, OUT/summary.csv and OUT/skipped.csv
// (path, rel, reason), each atomically. It sorts s and fills its aggregates.
func writeSummary(dir string, s *summary) error {
	sortSummary(s)
	computeAggregates(s)
	if s.Rows == nil {
		s.Rows = []summaryRow{}
	}
	if s.Skipped == nil {
		s.Skipped = []skippedFile{}
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	var cb bytes.Buffer
	w := csv.NewWriter(&cb)
	cols := csvColumns(s)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = c.name
	}
	w.Write(head)
	for i := range s.Rows {
		rec := make([]string, len(cols))
		for j, c := range cols {
			rec[j], _ = c.get(&s.Rows[i])
		}
		w.Write(rec)
	}
	w.Flush()
	var sb bytes.Buffer
	sw := csv.NewWriter(&sb)
	sw.Write([]string{"path", "rel", "reason"})
	for _, k := range s.Skipped {
		sw.Write([]string{k.Path, k.Rel, k.Reason})
	}
	sw.Flush()
	if err := errorsJoin(w.Error(), sw.Error()); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"summary.csv", cb.Bytes()}, {"skipped.csv", sb.Bytes()}, {"summary.json", append(js, '\n')}} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	return nil
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// readSummary reads a summary.json.
func readSummary(path string) (*summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: not a vizkit summary.json: %w", path, err)
	}
	if s.Version != summaryVersion {
		return nil, fmt.Errorf("%s: summary version %d, this vizkit reads version %d", path, s.Version, summaryVersion)
	}
	return &s, nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and
// renames it over path, so readers see the old file or the whole new one.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
