// Command train trains the lab's smallcnn on the procedural shapes data set
// and writes its weights as safetensors. With no flags it reproduces the
// committed weights (models/smallcnn/shapes.safetensors) up to floating-point
// summation order: same seeds, steps, batch size and learning rate.
//
//	go run ./models/smallcnn/cmd/train                       # → models/smallcnn/shapes.safetensors
//	go run ./models/smallcnn/cmd/train -out /tmp/w.safetensors -steps 300
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/models/smallcnn"
	"github.com/cnnviz/cnnviz/models/weights"
)

func main() {
	d := smallcnn.DefaultTrainOptions()
	out := flag.String("out", "models/smallcnn/shapes.safetensors", "where to write the trained weights (safetensors)")
	steps := flag.Int("steps", d.Steps, "optimiser steps")
	batch := flag.Int("batch", d.BatchSize, "images per step")
	lr := flag.Float64("lr", d.LearningRate, "Adam's peak learning rate (one cosine cycle to 0)")
	dataSeed := flag.Uint64("data-seed", d.DataSeed, "seed of the training images")
	initSeed := flag.Uint64("init-seed", d.InitSeed, "seed of the initial weights")
	evalN := flag.Int("eval", 1000, "held-out images (seed smallcnn.DefaultTestSeed) to measure accuracy on; 0 to skip")
	blocks := flag.String("blocks", "", "architecture as comma-separated conv widths, 0 for a max-pool (default: smallcnn.DefaultConfig)")
	backendCfg := flag.String("backend", "", `backend ("go", "xla:cpu", …; default $GOMLX_BACKEND or "go")`)
	flag.Parse()

	cfg := smallcnn.DefaultConfig()
	if *blocks != "" {
		cfg.Blocks = nil
		for _, f := range strings.Split(*blocks, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				fmt.Fprintf(os.Stderr, "train: -blocks: %q is not a number\n", f)
				os.Exit(2)
			}
			cfg.Blocks = append(cfg.Blocks, v)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := smallcnn.TrainOptions{Config: cfg, Steps: *steps, BatchSize: *batch, LearningRate: *lr, DataSeed: *dataSeed, InitSeed: *initSeed,
		Backend: *backendCfg, ProgressEvery: 25,
		Progress: func(p smallcnn.TrainProgress) {
			fmt.Printf("step %4d/%d  loss %.4f  smoothed %.4f  batch accuracy (smoothed) %5.1f%%  %6.1fs  %.0f images/s\n",
				p.Step, p.Steps, p.Loss, p.SmoothedLoss, 100*p.SmoothedAccuracy, p.Elapsed.Seconds(), p.ImagesPerSecond)
		}}
	res, err := smallcnn.Train(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
	defer res.Model.Close()
	fmt.Printf("trained %d steps × %d images in %s\n", res.Options.Steps, res.Options.BatchSize, res.Duration.Round(time.Millisecond))
	if *evalN > 0 {
		t0 := time.Now()
		ev, err := smallcnn.Evaluate(res.Model, nil, shapes.Config{}, smallcnn.DefaultTestSeed, 0, *evalN, 100)
		if err != nil {
			fmt.Fprintln(os.Stderr, "evaluate:", err)
			os.Exit(1)
		}
		fmt.Printf("held-out accuracy (seed %d, %d images): %.2f%% (%s)\n", smallcnn.DefaultTestSeed, ev.N, 100*ev.Accuracy, time.Since(t0).Round(time.Millisecond))
		res.Weights.Metadata["heldout_accuracy"] = fmt.Sprintf("%.4f on %d images of seed %d", ev.Accuracy, ev.N, smallcnn.DefaultTestSeed)
	}
	res.Weights.Metadata["train_seconds"] = fmt.Sprintf("%.1f", res.Duration.Seconds())
	if err := weights.SaveSafetensors(*out, res.Weights); err != nil {
		fmt.Fprintln(os.Stderr, "save:", err)
		os.Exit(1)
	}
	st, _ := os.Stat(*out)
	fmt.Printf("wrote %s (%d bytes)\n", *out, st.Size())
}
