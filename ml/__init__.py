"""The multimodal model: training, evaluation, batch scoring and on-demand inference."""
