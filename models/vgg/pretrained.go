package vgg

import (
	"context"
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models/weights"
)

// HubRepo returns the Hugging Face repository holding torchvision's ImageNet
// weights for arch ("vgg11" → "timm/vgg11.tv_in1k"). The files use timm's key
// names, which weights.Load converts to torchvision's.
func HubRepo(arch string) (string, error) {
	if _, err := StandardConfig(arch, 1000, 1); err != nil {
		return "", err
	}
	return "timm/" + arch + ".tv_in1k", nil
}

// Pretrained loads torchvision's ImageNet weights for arch from the Hugging
// Face hub (shared cache ~/.cache/huggingface/hub; downloaded when missing and
// the network allows, unless opts.Offline or HF_HUB_OFFLINE=1).
func Pretrained(ctx context.Context, arch string, opts weights.HubOptions) (*Model, error) {
	repo, err := HubRepo(arch)
	if err != nil {
		return nil, err
	}
	w, err := weights.Load(ctx, "hub:"+repo, opts)
	if err != nil {
		return nil, err
	}
	return Load(w)
}

// PretrainedOrRandom returns the pretrained arch when its weights are cached or
// downloadable, and otherwise a randomly initialised one (seed), with random
// true and reason saying why the pretrained weights could not be used. It is
// what the notebooks and the demo use, so that they run offline.
func PretrainedOrRandom(ctx context.Context, arch string, seed uint64, opts weights.HubOptions) (m *Model, random bool, reason string, err error) {
	m, perr := Pretrained(ctx, arch, opts)
	if perr == nil {
		return m, false, "", nil
	}
	if ctx.Err() != nil {
		return nil, false, "", ctx.Err()
	}
	m, err = NewRandom(arch, 1000, 1, seed)
	if err != nil {
		return nil, false, "", err
	}
	return m, true, fmt.Sprintf("pretrained weights unavailable (%s)", firstLine(perr.Error())), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
