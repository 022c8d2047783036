package main

import (
	"fmt"
	"io"
	"path"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/models/zoo"
)

// listModels prints every registered architecture, its family, its default
// CAM module and where `--weights auto` finds its pretrained weights.
func listModels(w io.Writer) {
	fmt.Fprintf(w, "%-18s %-10s %-16s %s\n", "architecture", "family", "CAM module", "pretrained weights (--weights auto)")
	for _, name := range zoo.Archs() {
		a, err := zoo.Lookup(name)
		if err != nil {
			continue
		}
		src := "none published"
		switch {
		case a.Hub != "":
			src = "hub:" + a.Hub + " (Hugging Face cache " + weights.HubCacheDir() + ")"
		case a.URL != "":
			src = a.URL + " (PyTorch cache " + path.Join(weights.TorchHubCheckpointDir(), path.Base(a.URL)) + ")"
		}
		cam := a.CAMLayer
		if cam == "" {
			cam = "(last spatial)"
		}
		fmt.Fprintf(w, "%-18s %-10s %-16s %s\n", a.Name, a.Family, cam, src)
	}
	fmt.Fprintln(w, "\nAlso: --weights FILE.safetensors|FILE.pth (architecture read from the tensors), FILE.onnx, hub:ORG/REPO.")
}
