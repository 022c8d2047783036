// Command vizkit explains a CNN's decision on an image and writes the
// pictures, a self-contained HTML report and (optionally) the raw arrays.
//
//	vizkit explain --model vgg11 --weights FILE|hub:REPO (--image FILE | --input-npy FILE)
//	               [--class N] [--layer features.19] [--methods features,kernels,gradcam,saliency]
//	               --out DIR [--npy] [--random-init SEED] [--backend go|xla:cpu|xla:cuda]
//	vizkit layers  --model vgg11 (--weights FILE|hub:REPO | --random-init SEED)
//	vizkit explain ... --image DIR|GLOB [--image ...] [--list FILE] [--shard i/n] [--metrics] --out DIR   (a data set; docs/datasets.md)
//	vizkit merge OUT SHARD_DIR...
//	vizkit methods
//	vizkit models
//	vizkit install-xla [cpu|cuda]
//
// Run `vizkit explain -h` for every flag.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
)

func usage() {
	fmt.Fprint(os.Stderr, `vizkit: see inside convolutional networks.

Commands:
  explain      run visualizations on an image (or a data set: repeated --image, folders, globs,
               --list) and write PNGs, index.html and .npy files (plus a gallery and summary.csv)
  merge        combine the --out folders of sharded data-set runs (vizkit merge OUT SHARD_DIR...)
  layers       print a model's layer table (name, kind, output channels, parameters)
  methods      list the visualization methods
  models       list the architectures and where their pretrained weights come from
  install-xla  download the XLA PJRT plugin (cpu or cuda) for GOMLX_BACKEND=xla:...

Run "vizkit COMMAND -h" for a command's flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "explain":
		err = runExplain(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "merge":
		err = runMerge(os.Args[2:], os.Stdout, os.Stderr)
	case "layers":
		err = runLayers(ctx, os.Args[2:], os.Stdout)
	case "methods":
		listMethods(os.Stdout)
	case "models":
		listModels(os.Stdout)
	case "install-xla":
		err = runInstallXLA(os.Args[2:])
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "vizkit: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vizkit: %s\n", strings.TrimSpace(err.Error()))
		os.Exit(1)
	}
}
