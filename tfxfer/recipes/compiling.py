"""What every recipe does when it compiles: keep the model's loss and metrics, change the optimizer."""


def compile_keeping_loss(model, optimizer, compile_options=None):
    """Recompiles `model` with `optimizer`, keeping its loss, metrics and other options."""
    arguments = {key: value for key, value in model.compile_arguments.items() if key != "optimizer"}
    arguments.update(compile_options or {})
    model.compile(optimizer=optimizer, **arguments)
