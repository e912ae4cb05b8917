"""The hazard-photo model in serving: preprocessing by the card, inference, thresholds, triage, boxes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from runtime.cards import PhotoCard
from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from runtime.session import SessionOptions, create_session, usable_cores
from runtime.taxonomy import HazardType, load_taxonomy
from serving import metrics
from serving.assessment import Detection, FlaggedHazard, PhotoAssessment
from serving.batching import MicroBatcher
from serving.settings import ServingSettings


@dataclass(frozen=True)
class ModelOutputs:
    """One photo's rows of the graph's outputs (detections: None when the model has no box head)."""

    probabilities: np.ndarray
    cam: np.ndarray
    detections: np.ndarray | None = None


class PhotoModel:
    """One onnxruntime session over a verified model directory, warmed up when loaded, with its own
    batcher: requests preprocessed for this model's card are batched for this model, so a hot
    swap lets queued photos finish on the model they were prepared for."""

    def __init__(self, model_dir: str | Path, *, settings: ServingSettings = ServingSettings(), processes: int = 1):
        """`processes`: how many processes serve this model on the machine at once (the service's API
        workers); batches of several photos run on this process's share of the cores."""
        self.model_dir = ModelDir.load(model_dir)
        self.card = PhotoCard.from_model_dir(self.model_dir)
        self.session = create_session(self.model_dir.onnx_path, options=settings.session_options)
        busy = cores_shared(settings.session_options, processes=processes)
        self.busy_session = (
            self.session
            if busy.threads == self.session.get_session_options().intra_op_num_threads
            else create_session(self.model_dir.onnx_path, options=busy)
        )
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = self._output_names()
        for size in (1, 2):  # warm both sessions up
            self.run_batch(np.zeros((size, 3, *self.card.size), dtype=np.uint8))
        self.batcher = MicroBatcher(
            self.run_batch,
            max_batch_size=settings.max_batch_size,
            max_queue=settings.max_queue,
            on_batch=metrics.observe_batch,
            on_queue=metrics.set_queue_depth,
        )

    def _output_names(self) -> list[str]:
        has_boxes = "detections" in {output.name for output in self.session.get_outputs()}
        if has_boxes != (self.card.detection is not None):
            raise ModelIntegrityError(
                f"{self.model_dir.path}: the graph {'has' if has_boxes else 'lacks'} a `detections` "
                f"output but card.json {'lacks' if has_boxes else 'has'} a `detection` block"
            )
        return ["probabilities", "cam", "detections"] if has_boxes else ["probabilities", "cam"]

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N×K) and class activation maps (N×K×h×w) from one run of the graph."""
        probabilities, cam, *_ = self.session.run(self.output_names, {self.input_name: images})
        return probabilities, cam

    def run_batch(self, images: np.ndarray) -> list[ModelOutputs]:
        """The graph's outputs for a batch preprocessed by this model's card, one entry a photo.

        One photo runs on every core this process may use (the fastest answer when it is alone); a
        batch of several means photos queued up, so every API process is busy, and it runs on this
        process's share of the cores (`busy_session`), instead of each process's threads fighting
        for all of them."""
        session = self.session if len(images) == 1 else self.busy_session
        probabilities, cam, *boxes = session.run(self.output_names, {self.input_name: images})
        detections = boxes[0] if boxes else [None] * len(probabilities)
        return [ModelOutputs(*outputs) for outputs in zip(probabilities, cam, detections)]

    def assessment(self, outputs: ModelOutputs, *, width: int, height: int) -> PhotoAssessment:
        """The assessment of one photo whose upright size is width × height pixels."""
        detections = (
            ()
            if outputs.detections is None
            else tuple(
                Detection(type=kind, score=score, box=box)
                for kind, score, box in self.card.detection.in_pixels(outputs.detections, width=width, height=height)
            )
        )
        hazards = {label: round(float(p), 6) for label, p in zip(self.card.labels, outputs.probabilities)}
        return build_assessment(
            hazards,
            self.card.thresholds,
            model_name=self.card.name,
            model_version=self.card.version,
            cam=outputs.cam,
            detections=detections,
        )

    async def assess(self, model_input: np.ndarray, *, width: int, height: int) -> PhotoAssessment:
        """Assess one preprocessed photo in whatever batch it joins (QueueFull when the queue is full)."""
        return self.assessment(await self.batcher.submit(model_input), width=width, height=height)


def cores_shared(options: SessionOptions, *, processes: int) -> SessionOptions:
    """`options` with the intra-op threads split between `processes` API processes (at least 1 each)."""
    return replace(options, threads=max(1, (options.threads or usable_cores()) // processes))


def triage(flagged: list[HazardType]) -> str:
    """`urgent` if a flagged type is suspected major (疑似重大), `review` if any is flagged, else `clear`."""
    if any(hazard.is_suspected_major for hazard in flagged):
        return "urgent"
    return "review" if flagged else "clear"


def build_assessment(
    hazards: dict[str, float],
    thresholds: dict[str, float],
    *,
    model_name: str,
    model_version: str,
    cam: np.ndarray | None = None,
    detections: tuple[Detection, ...] = (),
) -> PhotoAssessment:
    """Flag the types at or above their threshold, and every type the photo shows a box of (suspected-major
    first, then by probability), and triage.

    A drawn box flags its type even when the photo's probability stays under the flag threshold: the box
    passed its own class threshold (chosen for >= 90 % of boxes right on val), and a photo showing an
    officer a bare head must not be triaged `clear` (22 of 206 such test photos were, before)."""
    taxonomy = load_taxonomy()
    boxes = Counter(detection.type for detection in detections)
    flagged_types = [taxonomy[label] for label in hazards if hazards[label] >= thresholds[label] or boxes[label]]
    flagged_types.sort(key=lambda hazard: (not hazard.is_suspected_major, -hazards[hazard.id]))
    flagged = tuple(
        FlaggedHazard.of(
            hazard, probability=hazards[hazard.id], threshold=thresholds[hazard.id], boxes=boxes[hazard.id]
        )
        for hazard in flagged_types
    )
    return PhotoAssessment(
        model_name=model_name,
        model_version=model_version,
        hazards=hazards,
        flagged=flagged,
        triage=triage(flagged_types),
        thresholds=dict(thresholds),
        detections=detections,
        cam=cam,
    )
