"""Media: input images classified and decoded once, downloads that cannot be turned against the
machine, and the probing, thumbnails and browser copies of the videos that arrive.

May import only the foundations; history, backends and jobs use it.
"""

from .inputs import (
    DOWNLOAD_DEADLINE_S,
    MAX_DOWNLOAD_MB_VAR,
    MAX_INPUT_PIXELS,
    ImageInput,
    MediaItem,
    NormalizedImage,
    VideoInfo,
    atomic_write,
    check_remote_url,
    contact_sheet,
    download,
    find_media,
    limit_problems,
    link_or_copy,
    load_image,
    normalize_image,
    probe_video,
    remove_partials,
    sniff_image,
    sniff_video,
    thumbnail_of,
)

__all__ = ["DOWNLOAD_DEADLINE_S", "MAX_DOWNLOAD_MB_VAR", "MAX_INPUT_PIXELS", "ImageInput", "MediaItem",
           "NormalizedImage", "VideoInfo", "atomic_write", "check_remote_url", "contact_sheet", "download",
           "find_media", "limit_problems", "link_or_copy", "load_image", "normalize_image", "probe_video",
           "remove_partials", "sniff_image", "sniff_video", "thumbnail_of"]
