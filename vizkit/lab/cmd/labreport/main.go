// Command labreport computes the teaching lab's comparison of attribution
// methods (lab.MetricsTable) on held-out shapes images with the committed
// smallcnn weights and writes it, with the pictures it is about:
//
//	go run ./vizkit/lab/cmd/labreport              # docs/lab_metrics.md, docs/img/lab_*.png
//	go run ./vizkit/lab/cmd/labreport -n 40 -html /tmp/lab.html
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/cnnviz/cnnviz/models/smallcnn"
	"github.com/cnnviz/cnnviz/vizkit/lab"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

func main() {
	n := flag.Int("n", 100, "held-out images for the localisation metrics")
	perturb := flag.Int("perturb", 0, "images for the perturbation metrics (0: all n)")
	methods := flag.String("methods", "", "comma-separated method names (default: all)")
	docs := flag.String("docs", "docs", "directory for lab_metrics.md and img/lab_*.png (empty: skip)")
	htmlOut := flag.String("html", "", "also write a self-contained HTML page here")
	flag.Parse()
	if err := run(*n, *perturb, *methods, *docs, *htmlOut); err != nil {
		fmt.Fprintln(os.Stderr, "labreport:", err)
		os.Exit(1)
	}
}

func run(n, perturb int, methods, docs, htmlOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	l, err := lab.Open()
	if err != nil {
		return err
	}
	defer l.Close()
	test, err := lab.TestSet(n)
	if err != nil {
		return err
	}
	opts := lab.TableOptions{PerturbImages: perturb, Progress: func(p lab.TableProgress) {
		fmt.Fprintf(os.Stderr, "[%2d/%d] %-20s %s\n", p.Index+1, p.Total, p.Method, p.Stage)
	}}
	if methods != "" {
		opts.Methods = strings.Split(methods, ",")
	}
	tab, err := l.MetricsTable(ctx, test, opts)
	if err != nil {
		return err
	}
	fmt.Print(tab.Text())
	fmt.Printf("(%s)\n", tab.Duration.Round(time.Second))

	samples, err := lab.SampleGrid(test.Samples[:20], 10, 2)
	if err != nil {
		return err
	}
	cam, err := l.CAMGrid(ctx, test, "gradcam", 6, 3, 2)
	if err != nil {
		return err
	}
	kernels, err := l.FirstLayerKernels()
	if err != nil {
		return err
	}
	if docs != "" {
		if err := os.MkdirAll(filepath.Join(docs, "img"), 0o755); err != nil {
			return err
		}
		if err := render.WritePNG(filepath.Join(docs, "img", "lab_gradcam.png"), cam); err != nil {
			return err
		}
		w, _ := smallcnn.PretrainedWeights()
		md := fmt.Sprintf(mdHeader, w.Metadata["heldout_accuracy"], w.Metadata["train_seconds"], tab.Images, tab.PerturbImages,
			tab.Duration.Round(time.Second)) + tab.Markdown() + mdFooter
		if err := os.WriteFile(filepath.Join(docs, "lab_metrics.md"), []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s and %s\n", filepath.Join(docs, "lab_metrics.md"), filepath.Join(docs, "img", "lab_gradcam.png"))
	}
	if htmlOut != "" {
		h := render.NewHTML()
		h.Heading(2, "cnnviz teaching lab")
		h.Image(samples, "Held-out shapes with their true boxes", 0)
		h.Image(cam, "Grad-CAM of the predicted class (green: true box, white: map maximum)", 0)
		h.Image(kernels, "First-layer kernels after training", 0)
		frag, err := tab.HTML()
		if err != nil {
			return err
		}
		h.Raw(frag)
		if err := os.WriteFile(htmlOut, []byte(h.Page("cnnviz teaching lab")), 0o644); err != nil {
			return err
		}
		for name, img := range map[string]*image.RGBA{"samples": samples, "kernels": kernels} {
			_ = render.WritePNG(strings.TrimSuffix(htmlOut, ".html")+"_"+name+".png", img)
		}
	}
	return nil
}

const mdHeader = `# Teaching lab: are the explanations right?

A small CNN (` + "`models/smallcnn`" + `, 39,877 parameters: five 3×3 conv + ReLU blocks,
two max-pools, global average pooling, one linear layer) trained offline on the
procedural shapes data set (` + "`models/shapes`" + `: circle, square, triangle, cross,
ring at random positions, sizes and colours on cluttered, noisy 64×64
backgrounds). Because every object's pixel mask and box are known, the
explanations can be scored objectively.

- Committed weights: ` + "`models/smallcnn/shapes.safetensors`" + ` (held-out accuracy %s;
  trained in %s s on the shared 2-core CPU with the pure-Go backend). Reproduce with
  ` + "`go run ./models/smallcnn/cmd/train`" + ` (seeds in the file's metadata).
- This table: ` + "`go run ./vizkit/lab/cmd/labreport`" + ` (%d held-out images of seed 2 for
  localisation, %d for the perturbation metrics; %s). Methods come from
  ` + "`cam.Names()`" + ` plus the gradient methods, so new CAM methods appear
  automatically.

![Grad-CAM on held-out images](img/lab_gradcam.png)

`

const mdFooter = `
## Reading the table

- A random map is the floor: its pointing rate is about the box area, its
  energy equals the area, and its deletion/insertion AUCs show what any
  ordering of pixels achieves. Every method should beat it.
- On this network (global average pooling + one linear layer) the gradient
  of a logit at the last ReLU is the same at every position, so Grad-CAM, CAM,
  HiResCAM and XGrad-CAM are exactly the same map, and so are LayerCAM and
  Grad-CAM element-wise (a test checks it): identical rows are expected.
- FullGrad's maps spread over the background and the image borders on this
  network (its per-layer bias·gradient terms), so it scores far below the
  other CAM methods in every column.
- Localisation (pointing, energy) asks "does the map point at the object?";
  faithfulness (deletion, insertion, confidence change, ROAD) asks "does the
  model's score depend on the pixels the map calls important?". They can
  disagree: a sharp map on one corner of a square is faithful but localises
  only part of the object.
- Definitions and differences from the reference implementations are in the
  doc comments of package ` + "`vizkit/metrics`" + `.

## In a notebook

` + "```go" + `
l, _ := lab.Open()                                   // committed weights, embedded in the binary
test, _ := lab.TestSet(200)                          // held-out images with masks and boxes
acc, _ := l.Accuracy(test)
grid, _ := l.CAMGrid(ctx, test, "gradcam", 6, 3, 2)  // overlays with the true boxes
tab, _ := l.MetricsTable(ctx, test, lab.TableOptions{PerturbImages: 50})
html, _ := tab.HTML()
` + "```" + `

Retrain with ` + "`smallcnn.Train(ctx, smallcnn.TrainOptions{Progress: ...})`" + ` and wrap the
result with ` + "`lab.New(res.Model, engine.Options{})`" + `.
`
