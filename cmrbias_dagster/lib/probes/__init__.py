"""Attribute probes (Lee et al. 2024, arXiv 2408.02462): can a classifier tell an experiment's two
groups apart from the images, from the ground-truth masks, or from a trained model's encoder
features? Slice arrays per subject (data), a small CNN and a logistic model (classifier),
subject-grouped cross-validation with bootstrap CIs (scoring), Grad-CAM saliency (saliency), and
the nnU-Net encoder's pooled bottleneck features (encoder_features). Imports numpy, torch, scipy
and nnunetv2 (encoder_features, in a fresh process); never Dagster."""
