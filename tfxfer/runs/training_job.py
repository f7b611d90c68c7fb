"""`TrainingJob`: one training run's stages, in order: load the data, build the model, train, finish, or fail.

`tfxfer.runs.training_run` decides what job to run (a new run, a resume, a
worker beside the chief) and in which strategy and dtype policy; a job holds
what its stages share (config, strategy choice, data, model, run folder), so
no stage passes them down a chain of arguments.

Example:

>>> metrics = TrainingJob(config, choice, native_precision(choice.name), verbose=1).run()
"""

import shutil
import time
import warnings

from tfxfer import faults
from tfxfer.callbacks.best_checkpoint import BestCheckpoint
from tfxfer.callbacks.run_backup import RunBackup, latest_backup
from tfxfer.data.dataset_inspection import fixed_batch_size
from tfxfer.faults import fault_point
from tfxfer.models.length_grouping import batches_may_vary_in_length
from tfxfer.option_errors import OptionValueError, option
from tfxfer.recipes.recipe import recipe_named
from tfxfer.runs.moved_data import data_facts
from tfxfer.runs.progress import speaker
from tfxfer.runs.run_data import load_run_data, sharded_for_workers
from tfxfer.runs.run_evaluation import evaluate_model
from tfxfer.runs.run_export import export_run_model
from tfxfer.runs.run_failures import RunInterrupted, lost_worker, one_line
from tfxfer.runs.run_folder import RunFolder
from tfxfer.runs.run_model import build_run_model
from tfxfer.runs.run_status import write_status
from tfxfer.utils.atomic_files import replaced_atomically
from tfxfer.utils.owner_lock import OwnerLock


class TrainingJob:
    """A training run: `run()` loads the data, builds the model, trains and finishes, or records a failure.

    Args:
        config: the run's `TrainConfig`.
        choice: the `StrategyChoice` it trains under.
        precision: the dtype policy and why (`PrecisionChoice`).
        verbose: as for `train_run`.
        folder: the `RunFolder` of a resumed run; None for a new run, whose
            folder is created once its data and model are sound.
        started: when the job started (`time.time()`), for its metrics.
    """

    def __init__(self, config, choice, precision, verbose, folder=None, started=None, callbacks=()):
        self.config, self.choice, self.precision, self.verbose = config, choice, precision, verbose
        self.extra_callbacks = list(callbacks)
        self.folder = folder
        self.resuming = folder is not None
        self.started = time.time() if started is None else started
        self.say = speaker(verbose)
        self.data = self.model = None
        # A TPU needs every batch the same shape; elsewhere the config decides.
        self.drop_remainder = config.drop_remainder if config.drop_remainder is not None else choice.fixed_shapes

    def run(self):
        """All the stages; returns the run's metrics."""
        self.load_data()
        self.build_model()
        # The folder appears once data and model are sound, so mistakes leave none behind.
        lock = None
        if not self.resuming:
            if self.config.run_folder:
                self.folder = RunFolder.create_at(self.config.run_folder)
            else:
                self.folder = RunFolder.create(self.config.runs_dir, self.config.run_name)
            self.folder.write_config(self.config.to_dict(absolute_paths=True))
            lock = lock_run_folder(self.folder)
        try:
            return self.finish(self.train())
        except KeyboardInterrupt:
            self.fail_interrupted()
        except Exception as error:
            self.fail(error)
            raise
        finally:
            if lock is not None:
                lock.release()

    def load_data(self):
        """The training and validation data, sharded across workers."""
        from tfxfer.runs.training_run import check_feature_caching

        config = self.config
        self.say(f"Loading data from {config.data} ...")
        self.data = sharded_for_workers(
            load_run_data(config, drop_remainder=self.drop_remainder), self.choice, config, self.drop_remainder
        )
        if not self.resuming:
            check_feature_caching(config, self.data.modality)  # tfds:NAME: known once loaded
        data = self.data
        self.say(
            f"  {data.train_size} training and {data.validation_size} validation examples, "
            f"{data.num_classes} classes: {', '.join(map(str, data.class_names[:10]))}"
            + (" ..." if data.num_classes > 10 else "")
        )

    def build_model(self):
        """The model, in the strategy's scope; data of another image size is loaded again at the model's."""
        config = self.config
        with self.choice.strategy.scope():
            self.say(f"Building the model on {config.backbone or config.preset} ...")
            self.model = build_run_model(config, self.data)
            if self.model.modality == "image" and tuple(self.model.preprocessor.image_size) != tuple(
                self.data.image_size
            ):
                # A KerasHub image preset brings its own image size.
                loaded = load_run_data(config, drop_remainder=self.drop_remainder, preprocessor=self.model.preprocessor)
                self.data = sharded_for_workers(loaded, self.choice, config, self.drop_remainder)

    def fail_interrupted(self):
        """Ctrl-C or SIGTERM: the status says interrupted, and the error how to continue."""
        progress = _progress(self.folder, self.config)
        write_status(self.folder, "interrupted", **progress)
        raise RunInterrupted(
            f"The run {self.folder.path} was interrupted after {progress['epochs_completed']} of "
            f"{progress['epochs_total']} epochs; continue it with {{resume}}.",
            resume=(f"tfxfer.resume_run({str(self.folder.path)!r})", f"tfxfer train --resume {self.folder.path}"),
        ) from None

    def fail(self, error):
        """Records the failure in the run's status (a lost worker is named as such, and raised instead)."""
        lost = lost_worker(error, self.choice, self.config)
        write_status(self.folder, "failed", error=one_line(lost or error), **_progress(self.folder, self.config))
        if lost is not None:
            raise lost from None

    def train(self):
        """The recipe, in the run folder: (re)starts its status and callbacks; returns what it did."""
        with self.choice.strategy.scope():
            if not self.resuming:
                self.folder.write_text(
                    "data_report.txt",
                    "\n".join(
                        [self.data.report.summary()]
                        + [f"skipped {where}: {why}" for where, why in self.data.report.skipped]
                    )
                    + "\n",
                )
                self.folder.write_data_facts(data_facts(self.data))
                self.folder.write_precision(self.precision)
                self.say(f"Run folder: {self.folder.path}")
            else:
                done = _progress(self.folder, self.config)["epochs_completed"]
                self.say(f"Resuming {self.folder.path} after epoch {done} of {_total_epochs(self.config)}")
            write_status(self.folder, "running", **_progress(self.folder, self.config))
            return self._run_recipe()

    def finish(self, recipe):
        """Evaluation, plots, export, `metrics.json`, the report and the status `completed`."""
        fault_point("run:before-evaluation")
        if self.folder.best_checkpoint.exists():
            with warnings.catch_warnings():
                # The best epoch may predate a recompile; only the model's weights matter here.
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                self.model.load_weights(str(self.folder.best_checkpoint))

        wise_ft = self._apply_wise_ft() if self.config.wise_ft is not None else None

        self.say("Evaluating the WiSE-FT model ..." if wise_ft else "Evaluating the best checkpoint ...")
        evaluation_data = self.data.validation if self.data.validation is not None else self.data.train
        evaluation = evaluate_model(self.model, evaluation_data, self.data.class_names)
        evaluation["split"] = "validation" if self.data.validation is not None else "training (no validation split)"

        from tfxfer.reports import plot_confusion_matrix, plot_training_curves

        plot_training_curves(
            recipe["history"],
            self.folder.training_curves,
            title=self.config.run_name,
            phase_boundaries=recipe["phase_boundaries"],
        )
        plot_confusion_matrix(
            evaluation["confusion_matrix"],
            self.data.class_names,
            self.folder.confusion_matrix,
            title=f"{self.config.run_name}: {evaluation['split'].split(' ')[0]}",
        )

        export = None
        if self.config.export:
            self.say(f"Exporting for TF Serving to {self.config.export_dir}/{self.config.run_name}/ ...")
            export = export_run_model(self.model, self.config, self.data)
            if export["max_abs_difference"] is not None:
                self.say(f"  {export['path']} (fresh-process check: max |Δ| {export['max_abs_difference']:.1e})")

        metrics = {
            "name": self.config.run_name,
            "run_folder": str(self.folder.path),
            "strategy": self.choice.describe(),
            "workers": self.choice.workers,
            "replicas": self.choice.replicas,
            "dtype_policy": self.precision.policy,
            "dtype_policy_reason": self.precision.reason,
            "compiled_with": {
                "jit_compile": bool(self.model.jit_compile),
                "steps_per_execution": int(self.model.steps_per_execution),
                "fixed_batch_shapes": fixed_batch_size(self.data.train.element_spec),
                "length_bucketing": batches_may_vary_in_length(self.model, self.data.train.element_spec[0]),
            },
            "cached_features": recipe["cached_features"],
            "learning_rate": recipe["learning_rate"],
            "lora": self.model.lora,
            "wise_ft": wise_ft,
            "co_tuning": _co_tuning(self.model),
            "data": {
                "source": self.config.data,
                "class_names": list(self.model.class_names),
                "train_examples": self.data.train_size,
                "validation_examples": self.data.validation_size,
                "skipped": len(self.data.report.skipped),
            },
            "history": {key: [float(v) for v in values] for key, values in recipe["history"].items()},
            "phase_boundaries": recipe["phase_boundaries"],
            "best_epoch": recipe["best_epoch"],
            "resumed_after_epoch": recipe["resumed_after_epoch"],
            "evaluation": evaluation,
            "export": export,
            # The network alone (no w⁰ copies), counted once; trainable as the last phase left it (LoRA: the adapters).
            "parameters": _parameters(self.model.parameter_counts()),
            "seconds": round(time.time() - self.started, 1),
        }
        self.folder.write_metrics(metrics)

        from tfxfer.reports import write_run_report

        write_run_report(self.folder, self.config.to_dict(), metrics)
        write_status(self.folder, "completed", **_progress(self.folder, self.config, finished=True))
        shutil.rmtree(self.folder.backup_dir, ignore_errors=True)
        self.say(
            f"Accuracy on {evaluation['split']}: {evaluation['accuracy']:.3f} "
            f"(macro F1 {evaluation['macro_f1']:.3f}); report: {self.folder.report}"
        )
        return metrics

    def _run_recipe(self):
        import keras

        from tfxfer.recipes.recipe import run_recipe

        checkpoint = BestCheckpoint(self.folder.best_checkpoint)
        backup = RunBackup(self.folder.backup_dir)
        progress = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: (
                write_status(
                    self.folder, "running", epochs_completed=epoch + 1, epochs_total=_total_epochs(self.config)
                ),
                fault_point("train:epoch-end"),
            )
        )
        if faults.armed():  # a per-batch hook makes Keras wait on every step; only for fault tests
            progress.on_train_batch_end = lambda batch, logs: fault_point("train:batch-end")
        tensorboard = keras.callbacks.TensorBoard(log_dir=str(self.folder.logs_dir), write_graph=False, profile_batch=0)
        # The checkpoint goes first: a backup of epoch N exists only once epoch N's best checkpoint does.
        callbacks = [_epoch_header(_total_epochs(self.config)), checkpoint, tensorboard, backup, progress]
        callbacks += self.extra_callbacks
        steps_per_execution = self.config.steps_per_execution or self.choice.steps_per_execution
        compile_options = {"steps_per_execution": steps_per_execution} if steps_per_execution > 1 else {}
        if self.choice.jit_compile is not None:
            compile_options["jit_compile"] = self.choice.jit_compile
        learning_rate = self.config.learning_rate
        if learning_rate == "auto":
            learning_rate = self._found_learning_rate()
        self.say(
            f"Training: {self.config.recipe}, regularizer {self.config.regularizer}"
            + (f", LoRA rank {self.model.lora['rank']}" if self.model.lora else "")
        )
        if self.model.source_classifier is not None and latest_backup(self.folder.backup_dir) is None:
            # Before any fit, so that every backup holds it (a resume restores the original from its backup).
            self.say(
                "Co-Tuning: relating the classes to the source classes on the training split (no augmentation) ..."
            )
            self.model.compute_relationship(self.data.train_without_augmentation)
        history, boundaries = run_recipe(
            self.config.recipe,
            self.model,
            self.data.train,
            epochs=self.config.epochs,
            head_epochs=self.config.head_epochs,
            learning_rate=learning_rate,
            head_learning_rate=self.config.head_learning_rate,
            layer_decay=self.config.layer_decay,
            unfreeze_top=self.config.unfreeze_top,
            compile_options=compile_options,
            validation_data=self.data.validation,
            verbose=self.verbose,
            callbacks=callbacks,
            # A TPU runs the backbone only inside its compiled steps; the rehearsal does as the TPU does.
            cache_features="auto"
            if self.config.cache_features is not False and not self.choice.fixed_shapes
            else False,
        )
        if getattr(history, "cached_features", None):
            cache = history.cached_features
            self.say(
                f"  The frozen backbone's features were computed once ({cache['examples']} examples, "
                f"{cache['storage']}, {cache['seconds']:.0f} s) and the head trained on them."
            )
        return {
            "history": backup.history,  # every epoch, also those before a resume
            "phase_boundaries": boundaries,
            "best_epoch": checkpoint.best_epoch,
            "resumed_after_epoch": backup.resumed_from,
            "cached_features": getattr(history, "cached_features", None),
            "learning_rate": {"value": learning_rate, "found": self.config.learning_rate == "auto"},
        }

    def _found_learning_rate(self):
        """`--learning-rate auto`: the finder's suggestion, found once per run (a resume reads it back)."""
        import json

        from tfxfer.runs.learning_rate_search import FINDER_STEPS, find_fine_tuning_rate, write_learning_rate_curve

        recorded = self.folder.path / "lr_find.json"
        if recorded.exists():
            return float(json.loads(recorded.read_text())["suggestion"])
        self.say(f"Finding the learning rate ({FINDER_STEPS} steps on a copy of the weights) ...")
        curve = find_fine_tuning_rate(self.model, self.config, self.data.train)
        write_learning_rate_curve(curve, self.folder.path, title=f"{self.config.run_name}: learning-rate finder")
        self.say(f"  suggested learning rate {curve.suggestion:.2e} (lr_find.png)")
        if curve.caveat:
            self.say(f"  Careful: {curve.caveat}")
        return curve.suggestion

    def _apply_wise_ft(self):
        """`--wise-ft`: the backbone mixed with the pretrained one, at a given mix or the best on validation."""
        from tfxfer.recipes import choose_wise_ft_mix, wise_ft
        from tfxfer.reports import plot_wise_ft_curve

        if self.config.wise_ft != "auto":
            wise_ft(self.model, self.config.wise_ft)
            self.say(f"WiSE-FT: backbone mixed at {self.config.wise_ft:g} toward the fine-tuned weights")
            self._save_wise_ft_model()
            return {"mix": self.config.wise_ft}
        if self.data.validation is None:
            raise OptionValueError(
                "{wise_ft} auto picks the mix on the validation split, and this run has none: give "
                "{validation_data} or {validation_split}, or a fixed mix such as {wise_ft} 0.5.",
                wise_ft=option("wise_ft"),
                validation_data=option("validation_data"),
                validation_split=option("validation_split"),
            )
        self.say("WiSE-FT: choosing the mix on the validation split ...")
        curve = choose_wise_ft_mix(self.model, self.data.validation)
        plot_wise_ft_curve(curve, self.folder.path / "wise_ft.png", title=f"{self.config.run_name}: WiSE-FT")
        self.say(f"  mix {curve.best_mix:g}: validation {curve.metric} {max(curve.scores):.3f} (wise_ft.png)")
        self._save_wise_ft_model()
        return {"mix": curve.best_mix, "curve": curve.as_dict()}

    def _save_wise_ft_model(self):
        """The mixed model beside `best.keras`, which stays unmixed so a resume mixes it once again, not twice."""
        # The fine-tuning optimizer's slots are no part of the mixed model, and a resumed process has none:
        # it is saved with a fresh optimizer of the same configuration, so the file is the same either way.
        with self.model.without_training_state():
            with replaced_atomically(
                self.folder.wise_ft_checkpoint, fault_name="checkpoint:wise-ft-before-rename"
            ) as temporary:
                self.model.save(temporary)
        self.say(f"  {self.folder.wise_ft_checkpoint} is the run's model (export and evaluate use it)")


def lock_run_folder(folder):
    """One process trains a run folder at a time; a killed one's lock is taken over."""
    lock = OwnerLock(folder.lock_file)
    if not lock.acquire():
        raise RuntimeError(
            f"The run {folder.path} is being trained right now by {lock.describe_owner()}; "
            "wait for it to finish or stop it first."
        )
    return lock


def _epoch_header(total):
    """Prints `Epoch 1/N` over a one-epoch fit's line (a two-phase run's head phase), where Keras prints none.

    Keras heads an epoch's line only in fits of more than one epoch, so the
    first line of a log had no `Epoch 1/N`; later fits (`initial_epoch` > 0)
    are headed by Keras itself.
    """
    import keras

    class EpochHeader(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if self.params.get("verbose") and (self.params.get("epochs") or 0) <= 1:
                print(f"Epoch {epoch + 1}/{total}", flush=True)

    return EpochHeader()


def _co_tuning(model):
    """Co-Tuning's relationship, as metrics.json and the report show it: the top source classes per class."""
    source = model.source_classifier
    if source is None:
        return None
    return {
        "trade_off": model.regularizer.co_tuning_component.trade_off,
        "source_classes": source.num_source_classes,
        "top_source_classes": {
            name: [{"index": index, "name": label, "probability": round(p, 4)} for index, label, p in top]
            for name, top in zip(model.class_names, source.top_source_classes(k=3))
        },
    }


def _parameters(counts):
    return {"total": counts["total"], "trainable_at_end": counts["trainable"], "network": counts}


def _total_epochs(config):
    return recipe_named(config.recipe).total_epochs(config.epochs, config.head_epochs)


def _progress(folder, config, finished=False):
    total = _total_epochs(config)
    if finished:
        return {"epochs_completed": total, "epochs_total": total}
    latest = latest_backup(folder.backup_dir)
    return {"epochs_completed": latest[0] if latest else 0, "epochs_total": total}
