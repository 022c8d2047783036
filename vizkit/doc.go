// Package vizkit opens up convolutional networks in notebooks: kernels,
// feature maps, class activation maps, gradient attributions, activation
// maximisation and faithfulness metrics, each one call that returns a result
// nb.Show displays.
//
//	m := must.M1(vizkit.Open("resnet50"))       // pretrained when cached, else random with a banner
//	img := must.M1(vizkit.LoadImage("cat.jpg")) // preprocessed as the model expects
//	nb.Show(must.M1(vizkit.GradCAM(m, img)))    // overlay, target class and caption
//
// The computation lives below this package: vizkit/engine (the Explainer, one
// compiled graph per request, and the attribution contract every method
// implements), vizkit/cam (the CAM family), vizkit/attr (saliency, guided
// backpropagation, SmoothGrad, Integrated Gradients, occlusion),
// vizkit/actmax (activation maximisation, DeepDream), vizkit/metrics
// (faithfulness and localisation metrics), vizkit/heatmap (map numerics).
// Drawing lives in vizkit/render, which no computing package imports; this
// package joins the two.
//
// Layouts follow PyTorch: inputs and spatial activations are NCHW (N,C,H,W),
// classifier activations (N,F), logits (N,K), maps (N,H,W).
package vizkit

import (
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// Array is engine.Array: a dense float32 row-major array, the currency of
// every result.
type Array = engine.Array

// Target is engine.Target: what is explained (a class logit, a softmax
// score, a function of the outputs). Build one with engine.Class,
// engine.SoftmaxOf, engine.BinaryTarget, engine.RegressionTarget,
// engine.SimilarityTarget or engine.ClassSetTarget, and pass it with ForTarget.
type Target = engine.Target

// Progress is engine.Progress, the one progress report of every long call.
type Progress = engine.Progress
