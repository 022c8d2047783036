// Package metrics scores attribution maps, for any method and any model:
//
//   - localisation against a known object: PointingGame, EnergyInRegion
//     (regions from BoxRegion or MaskRegion);
//   - faithfulness through the model: Deletion and Insertion (RISE's causal
//     metrics), ConfidenceChange (pytorch-grad-cam's
//     CamMultImageConfidenceChange) and ROAD (pytorch-grad-cam's
//     ROADMostRelevantFirst / LeastRelevantFirst with noisy linear
//     imputation);
//   - references: RandomMaps (chance level), ScaleMaps (min–max to [0,1]).
//
// Maps are (H,W) arrays for one example (PointingGame, EnergyInRegion) or
// (N,H,W) for a batch, at the input's resolution; inputs x are (N,C,H,W)
// (any channel count C the network takes), normalised as the network
// expects. The tracked score is the softmax probability of each example's
// top-1 class unless Options say otherwise (Classes, ScoreLogit). Perturbed
// inputs go through the engine Options.BatchSize at a time (default
// engine.DefaultBatchSize), with Options.Progress after each execution and
// the context checked before each.
//
//	del, err := metrics.Deletion(ctx, ex, x, maps, metrics.CausalOptions{Steps: 32})
package metrics
