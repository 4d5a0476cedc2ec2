"""Vision tasks (tflite_support.task.vision)."""

from tflite_jit.support.task.vision.color_space_type import ColorSpaceType
from tflite_jit.support.task.vision.image_classifier import ImageClassifier, ImageClassifierOptions
from tflite_jit.support.task.vision.image_embedder import ImageEmbedder, ImageEmbedderOptions
from tflite_jit.support.task.vision.image_segmenter import ImageSegmenter, ImageSegmenterOptions
from tflite_jit.support.task.vision.object_detector import ObjectDetector, ObjectDetectorOptions
from tflite_jit.support.task.vision.tensor_image import TensorImage

__all__ = ["ColorSpaceType", "ImageClassifier", "ImageClassifierOptions", "ImageEmbedder",
           "ImageEmbedderOptions", "ImageSegmenter",
           "ImageSegmenterOptions", "ObjectDetector", "ObjectDetectorOptions", "TensorImage"]
