package main

// `vizkit explain` on many images (a data set): batched through the engine,
// resumable, sharded, with a gallery and a summary. See docs/datasets.md.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// Data-set layout under --out:
//
//	images/<rel>/            one folder per image, <rel> its path relative to the
//	                         inputs' common folder (extension kept): the single-image
//	                         layout (index.html, input.png, cam_<method>_<layer>.png,
//	                         .npy files with --npy) plus thumb_input.png,
//	                         thumb_<method>.png and result.json (the image's summary
//	                         row; present only in a finished folder)
//	images/<rel>.partial/    an image being written; renamed to images/<rel>/ when done
//	summary.csv, summary.json, skipped.csv, gallery.html, gallery-2.html, …
const (
	dsImagesDir   = "images"
	dsResultFile  = "result.json"
	dsPartial     = ".partial"
	dsThumbPx     = 112
	dsDefaultPage = 48
)

// dsTestHookAfterImage, when set (tests), is called after each image's folder
// is complete with the number completed so far in this run.
var dsTestHookAfterImage func(done int)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// wantsDataset reports whether explain's arguments ask for a data-set run:
// --image given more than once, an --image that is a folder or a glob (and
// not an existing file), or any of the data-set flags (--list, --shard,
// --metrics, --batch-size, --page-size, --top-k). Everything else keeps the
// single-image behaviour.
func wantsDataset(args []string) bool {
	images := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "list", "shard", "metrics", "batch-size", "page-size", "top-k":
			return true
		case "image":
			images++
			if !hasVal && i+1 < len(args) {
				i++
				val = args[i]
			}
			if st, err := os.Stat(val); err == nil {
				if st.IsDir() {
					return true
				}
			} else if isGlob(val) {
				return true
			}
		}
	}
	return images > 1
}

// dsOptions are a data-set run's settings.
type dsOptions struct {
	mf          modelFlags
	images      multiFlag
	list        string
	class       int
	layers      string
	methods     string
	out         string
	npy         bool
	eigen, aug  bool
	batch       int
	metrics     bool
	shard       shardSpec
	pageSize    int
	topK        int
	metricSteps int
	// mean, std and display are --mean, --std and --display-channels, as in
	// single-image explain.
	mean, std, display string
}

// register defines the data-set flags (besides the model flags).
func (o *dsOptions) register(fs *flag.FlagSet) {
	fs.Var(&o.images, "image", "input: an image file, a folder (searched recursively for .png/.jpg/.jpeg/.gif/.webp/.bmp; hidden entries skipped) or a glob such as 'photos/*.jpg' (quote it); repeat for more")
	fs.StringVar(&o.list, "list", "", "a list of inputs: one path per line, or CSV lines path[,class][,x0 y0 x1 y1] (class: target class index; box: the object's box in pixels of the original image, x1/y1 exclusive); relative paths are relative to the list's folder; see docs/datasets.md")
	fs.IntVar(&o.class, "class", -1, "target class for every image without a class in --list (default: each image's top-1 prediction)")
	fs.StringVar(&o.layers, "layer", "", "comma-separated layer names for the methods (default: each method's own)")
	fs.StringVar(&o.methods, "methods", "gradcam", "comma-separated methods (see `vizkit methods`); attribution methods (CAMs, saliency, smoothgrad, ig, occlusion, …) run batched, the other views image by image")
	fs.StringVar(&o.out, "out", "", "output directory (created; an existing one is resumed: finished images are skipped)")
	fs.BoolVar(&o.npy, "npy", false, "also write raw float32 arrays as .npy for every image")
	fs.BoolVar(&o.eigen, "eigen-smooth", false, "CAM methods: pytorch-grad-cam's eigen_smooth")
	fs.BoolVar(&o.aug, "aug-smooth", false, "CAM methods: pytorch-grad-cam's aug_smooth (6× slower)")
	fs.IntVar(&o.batch, "batch-size", 8, "images per engine batch (1–1024): memory grows linearly with it (about 0.1 GB per image for VGG11 Grad-CAM on the Go backend); on a GPU (--backend xla:cuda) raise it until the device memory is used, e.g. 64–256")
	fs.BoolVar(&o.metrics, "metrics", false, "compute faithfulness metrics per attribution method and image: deletion and insertion AUC, confidence change, ROAD (and with --list boxes, pointing game and energy in the box); costs about 100 extra network evaluations per image and method")
	fs.IntVar(&o.metricSteps, "metric-steps", 32, "--metrics: deletion/insertion steps")
	fs.Var(&o.shard, "shard", "i/n: process only shard i of n (0 ≤ i < n): the images whose relative path hashes (FNV-1a 64) to i mod n; for Kubernetes Indexed Jobs and Slurm arrays (merge the shards with: vizkit merge OUT SHARD_DIR...)")
	fs.IntVar(&o.pageSize, "page-size", dsDefaultPage, "images per gallery page")
	fs.IntVar(&o.topK, "top-k", 5, "classes listed per image in the gallery and summary.json")
	fs.StringVar(&o.mean, "mean", "", "per-channel normalisation mean (as single-image explain: 1 value or one per channel; default ImageNet's for RGB models, 0 for others; \"none\")")
	fs.StringVar(&o.std, "std", "", "per-channel normalisation standard deviation (1 value or one per channel; default ImageNet's for RGB models, 1 for others; \"none\")")
	fs.StringVar(&o.display, "display-channels", "", displayChannelsHelp)
}

// datasetOnlyFlags are the flags that only a data-set run has.
var datasetOnlyFlags = []string{"list", "batch-size", "metrics", "metric-steps", "shard", "page-size", "top-k"}

// explainUsage prints explain's flags and, after them, the data-set flags,
// for `vizkit explain -h`.
func explainUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "usage: vizkit explain [flags]   (one image: --image FILE or --input-npy FILE)")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nA data set (--image repeated, a folder, a glob or --list; docs/datasets.md) also takes:")
	ds := flag.NewFlagSet("explain", flag.ContinueOnError)
	ds.SetOutput(w)
	var o dsOptions
	o.register(ds)
	all := flag.NewFlagSet("explain", flag.ContinueOnError)
	all.SetOutput(w)
	for _, n := range datasetOnlyFlags {
		all.Var(ds.Lookup(n).Value, n, ds.Lookup(n).Usage)
	}
	all.PrintDefaults()
	fmt.Fprintln(w, "and there --methods defaults to gradcam. Combine shards with: vizkit merge OUT SHARD_DIR...")
}

func runDataset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dsOptions
	o.mf.register(fs)
	o.register(fs)
	fs.String("input-npy", "", "not supported with several images")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f := fs.Lookup("input-npy"); f.Value.String() != "" {
		return errors.New("--input-npy takes one array; it cannot be combined with several images, folders, globs or --list")
	}
	switch {
	case o.out == "":
		return errors.New("--out DIR is required")
	case len(o.images) == 0 && o.list == "":
		return errors.New("no inputs: give --image FILE|FOLDER|GLOB (repeatable) or --list FILE")
	case o.batch < 1 || o.batch > 1024:
		return fmt.Errorf("--batch-size must be between 1 and 1024, got %d", o.batch)
	case o.pageSize < 1 || o.pageSize > 10000:
		return fmt.Errorf("--page-size must be between 1 and 10000, got %d", o.pageSize)
	case o.topK < 1 || o.topK > 100:
		return fmt.Errorf("--top-k must be between 1 and 100, got %d", o.topK)
	case o.metricSteps < 1 || o.metricSteps > 10000:
		return fmt.Errorf("--metric-steps must be between 1 and 10000, got %d", o.metricSteps)
	}
	var chosen []*method
	var names []string
	engines := map[string]bool{}
	all := cliMethods()
	for _, name := range strings.Split(o.methods, ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		m, ok := all[name]
		if !ok {
			return fmt.Errorf("unknown method %q; known: %s", name, strings.Join(methodNames(), ", "))
		}
		// A name given twice, or an alias and its engine name (guided,
		// guidedbackprop), runs once, under the first name given.
		if !contains(names, name) && (m.Engine == "" || !engines[m.Engine]) {
			chosen = append(chosen, m)
			names = append(names, name)
			engines[m.Engine] = true
		}
	}
	if len(chosen) == 0 {
		return errors.New("--methods: no method given")
	}
	items, dups, err := collectInputs(o.images, o.list)
	if err != nil {
		return err
	}
	for _, d := range dups {
		fmt.Fprintf(stderr, "vizkit: %s given more than once; explained once\n", d)
	}
	total := len(items)
	if o.shard.N > 0 {
		var mine []dsItem
		for _, it := range items {
			if shardOf(it.Rel, o.shard.N) == o.shard.I {
				mine = append(mine, it)
			}
		}
		items = mine
		fmt.Fprintf(stderr, "vizkit: shard %s: %d of %d inputs\n", o.shard.String(), len(items), total)
	}

	net, random, err := o.mf.load(ctx, stderr)
	if err != nil {
		return err
	}
	defer net.Close()
	// The same preprocessing as a single --image (grayscale for 1-channel
	// models, the graph's own size, --mean/--std).
	prep, err := newInputPrep(net, o.mean, o.std, o.display)
	if err != nil {
		return err
	}
	if err := prep.pictures(); err != nil {
		return fmt.Errorf("data sets are pictures: %w (model %s)", err, net.Arch())
	}
	for _, it := range items {
		if it.Class >= 0 {
			if err := imageio.CheckClass(it.Class, net.NumClasses()); err != nil {
				return fmt.Errorf("%s: class: %w", it.Origin, err)
			}
		}
	}
	if o.class >= 0 || o.class < -1 {
		if err := imageio.CheckClass(o.class, net.NumClasses()); err != nil {
			return fmt.Errorf("--class: %w", err)
		}
	}
	b, err := backend.New(o.mf.backendCfg)
	if err != nil {
		return err
	}
	ex, err := engine.NewExplainer(net, engine.Options{BackendInstance: b})
	if err != nil {
		return err
	}
	defer ex.Close()
	var layers []string
	if o.layers != "" {
		for _, l := range strings.Split(o.layers, ",") {
			l = strings.TrimSpace(l)
			if _, err := ex.Layer(l); err != nil {
				return fmt.Errorf("--layer: %w", err)
			}
			layers = append(layers, l)
		}
	}
	if err := os.MkdirAll(filepath.Join(o.out, dsImagesDir), 0o755); err != nil {
		return err
	}

	// Cancelled on return, so the decoding goroutine never outlives the run.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &dsRun{o: o, ctx: ctx, ex: ex, net: net, random: random, methods: chosen, layers: layers, log: stderr, prep: prep}
	r.model = fmt.Sprintf("%s from %s", net.Arch(), sourceOr(net, o.mf))
	r.backendName = b.Name()
	r.config = r.fingerprint()
	r.label = func(i int) string {
		if net.NumClasses() == imageio.NumImageNetClasses {
			return imageio.Label(i)
		}
		return fmt.Sprintf("class %d", i)
	}

	// Resume: reuse every finished image whose result was made with the same settings.
	rows := map[string]summaryRow{}
	var todo []dsItem
	var skipped []skippedFile
	for _, it := range items {
		if it.Missing != "" {
			skipped = append(skipped, skippedFile{Path: it.Path, Rel: it.Rel, Reason: it.Missing})
			continue
		}
		if row, ok := r.finished(it); ok {
			rows[it.Rel] = row
			continue
		}
		todo = append(todo, it)
	}
	if n := len(rows); n > 0 {
		fmt.Fprintf(stderr, "vizkit: resuming: %d images already done, %d to go\n", n, len(todo))
	}
	prog := newProgress(stderr, len(todo))
	for res := range r.batches(todo) {
		skipped = append(skipped, res.skipped...)
		done, bad, err := r.processBatch(res.loaded)
		if err != nil {
			return err
		}
		skipped = append(skipped, bad...)
		for _, row := range done {
			rows[row.Rel] = row
		}
		prog.add(len(res.loaded)+len(res.skipped), len(skipped))
		// Collect the batch's memory and return it to the OS before the next
		// batch (a full GC per batch: milliseconds against seconds of work).
		// The live heap between batches is then flat (about 25 MB plus the
		// rows); without it the peak RSS crept up with the run's length.
		res = batchResult{}
		debug.FreeOSMemory()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	prog.finish()
	s := &summary{Version: summaryVersion, Model: r.model, Backend: r.backendName, Config: r.config,
		Methods: names, Metrics: o.metrics, Shard: o.shard.String(), Random: random, Skipped: skipped}
	for _, row := range rows {
		s.Rows = append(s.Rows, row)
	}
	if err := writeSummary(o.out, s); err != nil {
		return err
	}
	pages, err := writeGallery(o.out, s, o.pageSize)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "vizkit: %d images explained, %d skipped; summary in %s\n", len(s.Rows), len(s.Skipped), filepath.Join(o.out, "summary.csv"))
	for _, k := range s.Skipped {
		fmt.Fprintf(stderr, "vizkit: skipped %s: %s\n", k.Path, k.Reason)
	}
	fmt.Fprintf(stdout, "%s\n", pages[0])
	return nil
}

func contains(s []string, v string) bool { return slices.Contains(s, v) }

// dsRun is one data-set run's state.
type dsRun struct {
	o                          dsOptions
	ctx                        context.Context
	ex                         *engine.Explainer
	net                        models.Network
	random                     bool
	methods                    []*method
	layers                     []string
	log                        io.Writer
	model, backendName, config string
	label                      func(int) string
	// completed counts the images finished in this run.
	completed int
	// prep preprocesses the pictures.
	prep *inputPrep
}

// fingerprint identifies the settings that change an image's outputs.
func (r *dsRun) fingerprint() string {
	o := r.o
	names := make([]string, len(r.methods))
	for i, m := range r.methods {
		names[i] = m.Name
	}
	s := fmt.Sprintf("v%d|%s|classes=%d|methods=%s|layers=%s|class=%d|npy=%v|eigen=%v|aug=%v|metrics=%v|steps=%d|topk=%d",
		summaryVersion, r.model, r.net.NumClasses(), strings.Join(names, ","), strings.Join(r.layers, ","), o.class, o.npy, o.eigen, o.aug, o.metrics, o.metricSteps, o.topK)
	if p := r.prep; p != nil && (p.ch != 3 || o.mean != "" || o.std != "" || o.display != "") {
		// Only non-default inputs change the key, so earlier results stay valid.
		s += fmt.Sprintf("|ch=%d|mean=%v|std=%v|display=%v", p.ch, p.mean, p.std, p.display)
	}
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// itemKey adds the item's own settings (list class and box) to the run's fingerprint.
func (r *dsRun) itemKey(it dsItem) string {
	k := r.config + fmt.Sprintf("|class=%d", it.Class)
	if it.Box != nil {
		k += fmt.Sprintf("|box=%v", *it.Box)
	}
	return k
}

// dsResult is result.json, written last into an image's folder.
type dsResult struct {
	Version int        `json:"version"`
	Key     string     `json:"key"`
	Row     summaryRow `json:"row"`
}

func (r *dsRun) imageDir(it dsItem) string {
	return filepath.Join(r.o.out, dsImagesDir, filepath.FromSlash(it.Rel))
}

// finished returns the stored row of an image completed with the same settings.
func (r *dsRun) finished(it dsItem) (summaryRow, bool) {
	data, err := os.ReadFile(filepath.Join(r.imageDir(it), dsResultFile))
	if err != nil {
		return summaryRow{}, false
	}
	var res dsResult
	if json.Unmarshal(data, &res) != nil || res.Version != summaryVersion || res.Key != r.itemKey(it) || res.Row.Rel != it.Rel {
		return summaryRow{}, false
	}
	res.Row.Path = it.Path
	return res.Row, true
}

// loadedImage is a decoded, preprocessed input.
type loadedImage struct {
	it   dsItem
	in   *imageio.Input
	w, h int
}

type batchResult struct {
	loaded  []loadedImage
	skipped []skippedFile
}

// batches decodes todo in a goroutine, one batch ahead of the engine, so at
// most three batches of images are in memory (one being explained, one
// ready, one being decoded). Unreadable files come back as skipped.
func (r *dsRun) batches(todo []dsItem) <-chan batchResult {
	ch := make(chan batchResult, 1)
	go func() {
		defer close(ch)
		for i := 0; i < len(todo); i += r.o.batch {
			var br batchResult
			for _, it := range todo[i:min(i+r.o.batch, len(todo))] {
				if err := r.ctx.Err(); err != nil {
					return
				}
				img, err := imageio.Load(it.Path)
				var in *imageio.Input
				if err == nil {
					in, err = r.prep.apply(img)
				}
				if err != nil {
					br.skipped = append(br.skipped, skippedFile{Path: it.Path, Rel: it.Rel, Reason: oneLine(err.Error())})
					continue
				}
				br.loaded = append(br.loaded, loadedImage{it: it, in: in, w: img.Bounds().Dx(), h: img.Bounds().Dy()})
			}
			select {
			case ch <- br:
			case <-r.ctx.Done():
				return
			}
		}
	}()
	return ch
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// processBatch explains a batch: one forward pass, one Attribute call per
// attribution method for the whole batch (each image's target class), the
// other views image by image; then each image's folder is written.
// A failure that concerns one image skips it; only cancellation and output
// errors are fatal.
func (r *dsRun) processBatch(batch []loadedImage) ([]summaryRow, []skippedFile, error) {
	if len(batch) == 0 {
		return nil, nil, nil
	}
	ins := make([]*imageio.Input, len(batch))
	for i := range batch {
		ins[i] = batch[i].in
	}
	data, shape, err := imageio.Batch(ins...)
	if err != nil {
		return nil, nil, err
	}
	n := len(batch)
	x := &vizkit.Array{Shape: shape[:], Data: data}
	t0 := time.Now()
	fwd, err := r.ex.Run(x, engine.Request{Target: engine.Predicted()})
	if err != nil {
		return nil, nil, r.fatalOr(err)
	}
	fwdMs := msSince(t0) / float64(n)
	targets := make([]int, n)
	for i := range batch {
		targets[i] = fwd.Classes[i]
		if r.o.class >= 0 {
			targets[i] = r.o.class
		}
		if c := batch[i].it.Class; c >= 0 {
			targets[i] = c
		}
	}
	ab := attributedBatch{res: map[string]*engine.Attribution{}, ms: map[string]float64{}, err: map[string]error{}}
	settings := attributionSettings(&runCtx{Layers: r.layers, EigenSmooth: r.o.eigen, AugSmooth: r.o.aug,
		Mean: r.prep.mean, Std: r.prep.std}, x, false)
	for _, m := range r.methods {
		if m.Engine == "" {
			continue // not an attribution: runs image by image
		}
		t := time.Now()
		meth, _, err := engine.NewMethod(m.Engine, settings)
		var a *engine.Attribution
		if err == nil {
			a, err = meth.Attribute(r.ctx, r.ex, x, engine.Class(targets...))
		}
		if err != nil {
			if r.ctx.Err() != nil {
				return nil, nil, r.ctx.Err()
			}
			ab.err[m.Name] = err
			continue
		}
		ab.res[m.Name] = a
		ab.ms[m.Name] = msSince(t) / float64(n)
	}
	var rows []summaryRow
	var skipped []skippedFile
	for i, li := range batch {
		row, err := r.writeImage(li, x, i, fwd, fwdMs, targets[i], ab)
		if err != nil {
			if r.ctx.Err() != nil {
				return nil, nil, r.ctx.Err()
			}
			var fatal *fatalError
			if errors.As(err, &fatal) {
				return nil, nil, fatal.err
			}
			skipped = append(skipped, skippedFile{Path: li.it.Path, Rel: li.it.Rel, Reason: oneLine(err.Error())})
			continue
		}
		rows = append(rows, row)
		r.completed++
		if dsTestHookAfterImage != nil {
			dsTestHookAfterImage(r.completed)
		}
	}
	return rows, skipped, nil
}

// fatalError marks errors that stop the run (output not writable).
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }

func (r *dsRun) fatalOr(err error) error {
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	return err
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// attributedBatch holds a batch's attributions by CLI method name: the
// result, its time per image in milliseconds, or the error that stopped it.
type attributedBatch struct {
	res map[string]*engine.Attribution
	ms  map[string]float64
	err map[string]error
}

// writeImage writes example i's folder under a .partial name, then renames it.
func (r *dsRun) writeImage(li loadedImage, x *vizkit.Array, i int, fwd *engine.Result, fwdMs float64, target int,
	ab attributedBatch) (summaryRow, error) {
	it := li.it
	final := r.imageDir(it)
	tmp := final + dsPartial
	if err := os.RemoveAll(tmp); err != nil {
		return summaryRow{}, &fatalError{err}
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return summaryRow{}, &fatalError{err}
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	C, H, W := x.Shape[1], x.Shape[2], x.Shape[3]
	size := C * H * W
	input := &vizkit.Array{Shape: []int{1, C, H, W}, Data: x.Data[i*size : (i+1)*size]}
	c := &runCtx{Ctx: r.ctx, Ex: r.ex, Net: r.net, Input: input, Image: li.in.Image, OutDir: tmp, NPY: r.o.npy,
		Report: render.NewHTML(), Log: io.Discard, Layers: r.layers, EigenSmooth: r.o.eigen, AugSmooth: r.o.aug,
		Mean: r.prep.mean, Std: r.prep.std, Display: r.prep.display, Class: target, Target: engine.Class(target), Label: r.label}
	logits := fwd.Logits.Index(i)
	probs := softmax(logits.Data)
	row := summaryRow{Path: it.Path, Rel: it.Rel, Width: li.w, Height: li.h,
		Pred: fwd.Classes[i], PredLabel: r.label(fwd.Classes[i]), PredScore: probs[fwd.Classes[i]],
		Target: target, TargetLabel: r.label(target), TargetScore: probs[target], Box: it.Box, ForwardMs: fwdMs}
	for _, cs := range engine.TopClasses(logits.Data, r.o.topK) {
		row.TopK = append(row.TopK, classProb{Class: cs.Class, Label: r.label(cs.Class), Prob: probs[cs.Class]})
	}
	var region *metrics.Region
	if it.Box != nil {
		cb, reg := cropBox(r.prep.pre, *it.Box, li.w, li.h, H, W)
		row.CropBox, region = cb, reg
	}
	if err := c.SaveNPY("logits", logits); err != nil {
		return row, &fatalError{err}
	}
	if err := c.SavePNG("input", c.Image); err != nil {
		return row, &fatalError{err}
	}
	rep := c.Report
	rep.Heading(1, "cnnviz report")
	if r.random {
		rep.Warning("Random weights: this network was never trained. The pictures show how each method works, not what a trained network sees.")
	}
	rep.Paragraph(fmt.Sprintf("Model %s, backend %s. Input %s (%d×%d, %s).", r.model, r.backendName, it.Rel, li.w, li.h, r.prep.describe()))
	img := image.Image(c.Image)
	if row.CropBox != nil {
		b := row.CropBox
		if boxed, err := render.DrawBox(c.Image, image.Rect(b[0], b[1], b[2], b[3]), render.Jet.At(1), 2); err == nil {
			img = boxed
		}
	}
	rep.Figure([]render.FigureItem{{Image: img, Caption: "input", WidthPx: 224}}, render.FigureOptions{})
	if err := saveThumb(filepath.Join(tmp, "thumb_input.png"), img); err != nil {
		return row, &fatalError{err}
	}
	var trows [][]string
	for k, cp := range row.TopK {
		trows = append(trows, []string{strconv.Itoa(k + 1), cp.Label, fmt.Sprintf("%.4g", logits.Data[cp.Class]), fmt.Sprintf("%.2f%%", 100*cp.Prob)})
	}
	rep.Heading(2, fmt.Sprintf("Top-%d classes", r.o.topK))
	rep.Table([]string{"rank", "class", "logit", "probability"}, trows)
	rep.Paragraph(fmt.Sprintf("Target class for the explanations: %s.", r.label(target)))

	for _, m := range r.methods {
		if err := r.ctx.Err(); err != nil {
			return row, err
		}
		before := pngFiles(tmp)
		mr := methodRow{Name: m.Name}
		if err := ab.err[m.Name]; err != nil {
			return row, fmt.Errorf("method %s: %w", m.Name, err)
		}
		if a, batched := ab.res[m.Name]; batched {
			if err := writeAttribution(c, a, i); err != nil {
				return row, fmt.Errorf("method %s: %w", m.Name, err)
			}
			mr.Ms, mr.Layer = ab.ms[m.Name], strings.Join(a.Layers, "+")
			if r.o.metrics {
				if err := r.metrics(&mr, input, a, i, it, region); err != nil {
					return row, fmt.Errorf("method %s metrics: %w", m.Name, err)
				}
				var mrows [][]string
				for _, f := range metricFields {
					if v := f.get(&mr); v != nil {
						mrows = append(mrows, []string{f.title, fmt.Sprintf("%.4g", *v)})
					}
				}
				rep.Paragraph(fmt.Sprintf("Faithfulness of this map for %s (softmax probability; see docs/datasets.md):", r.label(target)))
				rep.Table([]string{"metric", "value"}, mrows)
			}
		} else {
			t := time.Now()
			if err := m.Run(c); err != nil {
				return row, fmt.Errorf("method %s: %w", m.Name, err)
			}
			mr.Ms = msSince(t)
		}
		// The method's thumbnail: the first PNG it wrote.
		if added := newNames(before, pngFiles(tmp)); len(added) > 0 {
			if err := thumbFrom(filepath.Join(tmp, added[0]), filepath.Join(tmp, "thumb_"+m.Name+".png")); err != nil {
				return row, &fatalError{err}
			}
		}
		row.Methods = append(row.Methods, mr)
	}
	if err := rep.Err(); err != nil {
		return row, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "index.html"), []byte(rep.Page("cnnviz: "+r.net.Arch()+" on "+filepath.Base(it.Path))), 0o644); err != nil {
		return row, &fatalError{err}
	}
	js, err := json.MarshalIndent(dsResult{Version: summaryVersion, Key: r.itemKey(it), Row: row}, "", "  ")
	if err != nil {
		return row, err
	}
	if err := writeFileAtomic(filepath.Join(tmp, dsResultFile), js); err != nil {
		return row, &fatalError{err}
	}
	// Replace an older folder (other settings) by the finished one.
	if err := os.RemoveAll(final); err != nil {
		return row, &fatalError{err}
	}
	if err := os.Rename(tmp, final); err != nil {
		return row, &fatalError{err}
	}
	ok = true
	return row, nil
}

// metrics fills mr's faithfulness metrics for example i of a (run on that
// image alone, so the numbers do not depend on the batch; ROAD's noise is
// seeded by FNV-1a of the image's relative path).
func (r *dsRun) metrics(mr *methodRow, input *vizkit.Array, a *engine.Attribution, i int, it dsItem, region *metrics.Region) error {
	maps := exampleArray(a.Maps, i)
	v, err := imageMetrics(r.ctx, r.ex, input, maps, a.Classes[i], r.o.metricSteps, it.Rel, region)
	if err != nil {
		return err
	}
	mr.Deletion, mr.Insertion, mr.ConfChange, mr.ROAD, mr.Pointing, mr.Energy = v.Deletion, v.Insertion, v.ConfChange, v.ROAD, v.Pointing, v.Energy
	return nil
}

// imageMetrics computes the summary's metrics for one image x (1,3,H,W) and
// its map (1,H,W), any attribution's, with the API (package vizkit/metrics):
// Deletion and Insertion (steps, default baselines), ConfidenceChange and
// ROAD (seed roadSeed(rel)) on the class's softmax probability; with a
// region, PointingGame (tolerance 15 px) and EnergyInRegion.
// ConfidenceChange multiplies the input by the map, so a map with values
// outside [0,1] (not a CAM) is min–max scaled for it first (metrics.ScaleMaps,
// as the lab does); the other metrics take the map as it is.
func imageMetrics(ctx context.Context, ex *engine.Explainer, x, maps *vizkit.Array, class, steps int, rel string, region *metrics.Region) (methodRow, error) {
	var mr methodRow
	mo := metrics.Options{Classes: []int{class}}
	del, err := metrics.Deletion(ctx, ex, x, maps, metrics.CausalOptions{Options: mo, Steps: steps})
	if err != nil {
		return mr, err
	}
	ins, err := metrics.Insertion(ctx, ex, x, maps, metrics.CausalOptions{Options: mo, Steps: steps})
	if err != nil {
		return mr, err
	}
	ccMaps := maps
	if !inUnitRange(maps.Data) {
		if ccMaps, err = metrics.ScaleMaps(maps); err != nil {
			return mr, err
		}
	}
	conf, err := metrics.ConfidenceChange(ctx, ex, x, ccMaps, mo)
	if err != nil {
		return mr, err
	}
	road, err := metrics.ROAD(ctx, ex, x, maps, metrics.ROADOptions{Options: mo, Seed: roadSeed(rel)})
	if err != nil {
		return mr, err
	}
	f := func(v float64) *float64 { return &v }
	mr.Deletion, mr.Insertion = f(del.AUC[0]), f(ins.AUC[0])
	mr.ConfChange, mr.ROAD = f(float64(conf.Change[0])), f(road.Combined[0])
	if region != nil {
		m := maps.Index(0)
		pg, err := metrics.PointingGame(m, *region, 15)
		if err != nil {
			return mr, err
		}
		hit := 0.0
		if pg.Hit {
			hit = 1
		}
		e, err := metrics.EnergyInRegion(m, *region)
		if err != nil {
			return mr, err
		}
		mr.Pointing, mr.Energy = f(hit), f(e)
	}
	return mr, nil
}

// inUnitRange reports whether every value is in [0,1].
func inUnitRange(v []float32) bool {
	for _, f := range v {
		if !(f >= 0 && f <= 1) {
			return false
		}
	}
	return true
}

// roadSeed is ROAD's noise seed for an image: FNV-1a 64 of its relative path.
func roadSeed(rel string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(rel))
	return h.Sum64()
}

// cropBox maps a box in original pixels (x0 y0 x1 y1, exclusive ends) into
// the H×W centre crop of the image resized by pre (torchvision's geometry),
// rounding outwards and clipping; nil when nothing of it is in the crop.
func cropBox(pre imageio.Preprocess, b [4]float64, w, h, H, W int) (*[4]int, *metrics.Region) {
	rh, rw := pre.ResizedSize(w, h)
	sx, sy := float64(rw)/float64(w), float64(rh)/float64(h)
	ox, oy := math.RoundToEven(float64(rw-W)/2), math.RoundToEven(float64(rh-H)/2)
	x0 := max(0, int(math.Floor(b[0]*sx-ox)))
	y0 := max(0, int(math.Floor(b[1]*sy-oy)))
	x1 := min(W, int(math.Ceil(b[2]*sx-ox)))
	y1 := min(H, int(math.Ceil(b[3]*sy-oy)))
	if x1 <= x0 || y1 <= y0 {
		return nil, nil
	}
	reg, err := metrics.BoxRegion(H, W, image.Rect(x0, y0, x1, y1))
	if err != nil {
		return nil, nil
	}
	return &[4]int{x0, y0, x1, y1}, &reg
}

func pngFiles(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".png") && !strings.HasPrefix(e.Name(), "thumb_") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func newNames(before, after []string) []string {
	var out []string
	for _, a := range after {
		if !contains(before, a) {
			out = append(out, a)
		}
	}
	return out
}

// saveThumb writes img as PNG scaled to dsThumbPx high (never enlarged;
// at most 4·dsThumbPx wide, so multi-panel pictures stay legible).
func saveThumb(path string, img image.Image) error {
	rgb := imageio.ToRGB(img)
	b := rgb.Bounds()
	scale := min(1, float64(dsThumbPx)/float64(max(1, b.Dy())), float64(4*dsThumbPx)/float64(max(1, b.Dx())))
	w, h := max(1, int(float64(b.Dx())*scale+0.5)), max(1, int(float64(b.Dy())*scale+0.5))
	small, err := imageio.Resize(rgb, w, h, imageio.Bilinear)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, small); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func thumbFrom(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return saveThumb(dst, img)
}

// progress prints an overall progress bar on the log: images done, rate,
// time left. On a terminal it redraws one line; otherwise it prints a line
// per batch.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	done  int
	start time.Time
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) add(n, skipped int) {
	p.done += n
	if p.total == 0 {
		return
	}
	el := time.Since(p.start).Seconds()
	rate := float64(p.done) / max(el, 1e-9)
	left := "?"
	if rate > 0 {
		left = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	const width = 30
	fill := width * p.done / p.total
	bar := strings.Repeat("#", fill) + strings.Repeat("-", width-fill)
	line := fmt.Sprintf("vizkit: [%s] %d/%d images (%d%%), %.2f img/s, %s left, %d skipped", bar, p.done, p.total, 100*p.done/p.total, rate, left, skipped)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) finish() {
	if p.tty && p.total > 0 {
		fmt.Fprintln(p.w)
	}
}
