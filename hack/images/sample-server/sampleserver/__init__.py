"""The sample model server of modeldeploy's real-serving tests: MLServer (Open Inference Protocol v2)
serving the one model found at $MODEL_DIR, under the name `iris`.

- `sampleserver.train` trains the iris models at image build time (scikit-learn's bundled data);
- `sampleserver.broken` holds the estimator class of `iris-broken`, whose predictions always fail;
- `sampleserver.serve` is the entrypoint: MLServer, exiting non-zero when the model fails to load.
"""
