"""A browser-friendly copy of a video: the same H.264 picture, with audio every front end plays.

Sora's MP4s (and many other models') carry AAC audio. VS Code's notebook outputs run in an
Electron build without the proprietary audio codecs: H.264 video plays there but AAC does not
(microsoft/vscode#156558), so those videos play silent. `browser_copy` keeps the video stream
as it is, packet for packet (no re-encode, no quality loss, fast), and re-encodes only the audio
to Opus (the default) or MP3, both in MP4, which Chromium, Electron, Firefox and Safari play.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Literal

from .._errors import GenerationError, ValidationError

__all__ = ["AUDIO_CODECS", "BrowserAudio", "browser_copy"]

BrowserAudio = Literal["opus", "mp3"]
_Encoder = Literal["libopus", "libmp3lame"]  # FFmpeg encoder names (PyAV types add_stream by them)

#: audio codecs every browser front end plays in MP4, with the encoder, rate and samples per frame
AUDIO_CODECS: dict[str, tuple[_Encoder, int, int]] = {
    "opus": ("libopus", 48_000, 960),
    "mp3": ("libmp3lame", 44_100, 1152),
}
_PLAYABLE = {"opus", "mp3", "mp3float"}  # audio already fine (decoder names): no copy is made
_BITRATE = 128_000


def browser_copy(path: str | os.PathLike[str], *, audio: BrowserAudio = "opus",
                 dest: str | os.PathLike[str] | None = None) -> Path:
    """A copy of the video at `path` whose audio is `audio` ("opus" or "mp3") in MP4, the video
    stream copied unchanged; returns its path (by default `<stem>.<audio>.mp4` beside `path`).

    Returns `path` itself when there is nothing to change (no audio, or audio already Opus or
    MP3), and an existing copy newer than `path` without redoing it. Raises ValidationError for
    another `audio`, GenerationError(kind="media") when the file cannot be read or written.
    """
    if audio not in AUDIO_CODECS:
        raise ValidationError([("audio", f"must be one of {', '.join(AUDIO_CODECS)} (got {audio!r})")])
    source = Path(path)
    target = Path(dest) if dest is not None else source.with_name(f"{source.stem}.{audio}.mp4")
    if target.resolve() == source.resolve():
        raise ValidationError([("dest", f"must differ from the video itself ({source.name})")])
    import av

    if not _needs_copy(source):
        return source
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        _remux(source, partial, audio)
        os.replace(partial, target)
    except (av.FFmpegError, OSError) as exc:
        raise GenerationError(f"cannot make a browser copy of {source.name}: {exc}", kind="media") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


def _needs_copy(source: Path) -> bool:
    """Whether the video has audio a browser front end may not play."""
    import av

    try:
        with av.open(str(source)) as container:
            if not container.streams.video:
                raise GenerationError(f"{source.name} holds no video stream", kind="media")
            return any(s.codec_context.name not in _PLAYABLE for s in container.streams.audio[:1])
    except (av.FFmpegError, OSError) as exc:
        raise GenerationError(f"cannot read the video {source.name}: {exc}", kind="media") from exc


def _remux(source: Path, target: Path, audio: str) -> None:
    """Copy the first video stream's packets and re-encode the first audio stream (mono stays
    mono, anything else becomes stereo), in one pass."""
    import av

    encoder, rate, frame_size = AUDIO_CODECS[audio]
    with av.open(str(source)) as inp, av.open(str(target), "w", format="mp4",
                                               options={"movflags": "+faststart"}) as out:
        video_in, audio_in = inp.streams.video[0], inp.streams.audio[0]
        video_out = out.add_stream_from_template(video_in)
        layout = "mono" if audio_in.codec_context.channels == 1 else "stereo"  # 5.1 is mixed down
        audio_out = out.add_stream(encoder, rate=rate, layout=layout)
        audio_out.bit_rate = _BITRATE
        formats = audio_out.codec_context.codec.audio_formats
        if not formats:
            raise GenerationError(f"FFmpeg's {encoder} encoder lists no sample format", kind="media")
        fmt = formats[0].name
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=frame_size)
        samples: int | None = None  # the next audio pts in 1/rate: frames back to back

        def encode(frames: list[av.AudioFrame]) -> None:
            nonlocal samples
            for frame in frames:
                if samples is None:  # where the first sample plays, as in the source
                    samples = max(0, round((frame.time or 0.0) * rate))
                frame.pts, frame.time_base = samples, Fraction(1, rate)
                samples += frame.samples
                out.mux(audio_out.encode(frame))

        for packet in inp.demux(video_in, audio_in):
            if packet.stream is video_in:
                if packet.dts is not None:  # the demuxer's last, empty packet is not muxed
                    packet.stream = video_out
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if isinstance(frame, av.AudioFrame):  # always, from the audio stream's packets
                    encode(resampler.resample(frame))
        encode(resampler.resample(None))
        out.mux(audio_out.encode(None))
