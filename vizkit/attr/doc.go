// Package attr computes input-space attributions on an engine.Explainer:
// gradients under PyTorch's or a modified ReLU backward rule (Saliency:
// vanilla gradient, guided backpropagation, deconvnet; gradient × input),
// Guided Grad-CAM, SmoothGrad (with SmoothGrad² and VarGrad), Integrated
// Gradients and Occlusion. Nothing here draws: package vizkit wraps each
// result with the input channels and normalisation it is shown with.
//
// Layouts follow PyTorch. The input x is (N,C,H,W), normalised as the
// network expects (C its input channel count); gradients and attributions
// are (N,C,H,W) too, maps (N,H,W). Every function takes a context (checked
// before every engine execution) and an *engine.Explainer.
//
// Targets: the zero engine.Target is each example's top-1 class logit on
// the clean input; the sampling methods resolve it once, so every noisy
// copy, path point or occluded copy explains the same class.
//
// Batching: SmoothGrad's samples, Integrated Gradients' path points and
// Occlusion's windows go through the engine BatchSize at a time (0:
// engine.DefaultBatchSize), so memory is bounded whatever their number;
// Progress (engine.Progress, Done/Total in network evaluations) is called
// after each batch. Batching changes only float rounding.
//
// Defaults: SmoothGrad 50 samples, σ 15 % of each example's input range;
// Integrated Gradients 50 Gauss–Legendre steps from a black baseline;
// Occlusion a 32×32 window, stride 16, set to 0.
//
// Importing attr registers saliency, guidedbackprop, deconv, gradxinput,
// smoothgrad, integratedgradients, guidedgradcam and occlusion as
// engine attribution methods (engine.NewMethod).
package attr
