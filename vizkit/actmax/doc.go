// Package actmax optimises input images so that a unit of the network fires
// strongly — FlashTorch's GradientAscent, with Lucid's regularisers and
// decorrelated Fourier parameterisation — and dreams on existing images
// (DeepDream). It computes only; package vizkit draws the results.
//
//	r, err := actmax.Run(ctx, ex, []engine.Target{engine.ChannelMean("features.8", 3)}, actmax.Options{})
//
// What is maximised is an engine.Target: engine.ChannelMean(layer, ch) (a
// channel's mean activation, FlashTorch's filter objective),
// engine.Neuron(layer, ch, y, x) (one position) or engine.Class(c) (a
// logit). One call's targets share kind and layer, and are optimised
// Options.BatchSize at a time with one compiled graph.
//
// Images are NCHW (N,C,H,W) with C the network's input channel count:
// Result.Input normalised as the network expects, Result.Pixels in [0,1].
// Defaults (the zero Options): FlashTorch's pixel parameterisation and
// normalised-gradient steps of LR 1, 30 steps, 128×128, no regularisation,
// BatchSize engine.DefaultBatchSize.
//
// The engine differentiates the objective with respect to the network input
// x. Everything between the optimised parameters θ and x (the Fourier
// parameterisation, colour decorrelation, sigmoid, random
// jitter/scale/rotation, normalisation) is applied in Go, and the gradient
// is carried back through it with the chain rule, ∂J/∂θ = Pᵀ Tᵀ (∂J/∂x /
// std), using each map's exact transpose. Penalties (total variation, L2)
// are differentiated in Go as well.
package actmax
