"""Media: input images classified and decoded once, downloads that cannot be turned against the
machine, and the probing, thumbnails and browser copies of the videos that arrive.

Modules, lowest first: `files` (atomic writes, `.part` leftovers), `probe` (sniffing, PyAV probes,
thumbnails, `x-fal` limits), `outputs` (the media an endpoint returned), `downloads` (bounded
http(s) fetches), `inputs` (input images), `browser_copy`.
May import only the foundations; history, backends and jobs use it.
"""

from .downloads import DOWNLOAD_DEADLINE_S, MAX_DOWNLOAD_MB_VAR, download
from .files import atomic_write, link_or_copy, remove_partials
from .inputs import (
    MAX_INPUT_PIXELS,
    ImageInput,
    ImageKind,
    ImageSource,
    NormalizedImage,
    check_remote_url,
    classify_image,
    load_image,
    normalize_image,
)
from .outputs import MediaItem, find_media
from .probe import (
    VideoInfo,
    contact_sheet,
    limit_problems,
    probe_video,
    sniff_image,
    sniff_video,
    thumbnail_of,
)

__all__ = ["DOWNLOAD_DEADLINE_S", "MAX_DOWNLOAD_MB_VAR", "MAX_INPUT_PIXELS", "ImageInput", "ImageKind",
           "ImageSource", "MediaItem", "NormalizedImage", "VideoInfo", "atomic_write", "check_remote_url",
           "classify_image", "contact_sheet", "download", "find_media", "limit_problems", "link_or_copy",
           "load_image", "normalize_image", "probe_video", "remove_partials", "sniff_image", "sniff_video",
           "thumbnail_of"]
