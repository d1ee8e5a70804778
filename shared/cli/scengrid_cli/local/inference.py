"""The inference function on the local stack: its real handler behind a local Lambda invoke
endpoint (the workers' ``lambda.invoke`` reaches it through ``SCENGRID_LAMBDA_ENDPOINT_URL``),
and the trained PD model published to the stack's bucket with its SHA-256, where the handler
and inline workers load it from, as on AWS.

The model published is ``pd_model``, else ``SCENGRID_PD_MODEL_FILE``, else
``build/models/pd.onnx`` when ``make model`` wrote it. Without one, the stack still starts:
predictions then fail with a ModelNotFound that says how to make one."""

from __future__ import annotations

from pathlib import Path

from scengrid import layout
from scengrid.inference.publish import default_model_file, publish_model
from scengrid_cli.local.lambda_endpoint import LocalLambdaEndpoint
from scengrid.settings import Settings, get_settings

INFERENCE_HANDLER = "services.inference.handler.lambda_handler"


class LocalInference:
    def __init__(self, pd_model: Path | None = None) -> None:
        self.pd_model = pd_model
        self.endpoint: LocalLambdaEndpoint | None = None
        self.model_version: str | None = None  # SHA-256 of the published model

    def start(self, settings: Settings, stack_name: str, work_dir: Path) -> dict[str, object]:
        """Serve the function, publish the model; returns the settings that point at them."""
        function = f"{stack_name}-inference"  # the template's FunctionName
        self.endpoint = LocalLambdaEndpoint({function: INFERENCE_HANDLER}).start()
        uri = layout.s3_uri(settings.bucket, layout.pd_model_key())
        model = self.pd_model or (Path(settings.pd_model_file) if settings.pd_model_file else default_model_file())
        if model is not None:
            self.model_version = publish_model(model, uri)
        return {
            "lambda_endpoint_url": self.endpoint.url,
            "inference_function": function,
            "model_uri": uri,
            "model_cache_dir": str(work_dir / "model-cache"),
        }

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None


def demo_pd_model() -> Path:
    """The model a local run with the credit overlay uses: the configured file, else
    ``build/models/pd.onnx``, trained here first (about half a minute) when it is missing."""
    configured = get_settings().pd_model_file
    if configured:
        return Path(configured)
    found = default_model_file()
    if found is not None:
        return found
    from scengrid_cli.training.train import train  # the dev dependencies: scikit-learn, skl2onnx, onnx

    return train("default").path
