// Package recognize finds licence plates in still images and reads them.
//
// It owns plate localisation, OCR, the ONNX Runtime sessions that run the
// PP-OCRv4 detector and recogniser, region plate formats, and the Tracker
// that groups reads of consecutive frames into vehicle passes.
//
// Pipeline, per image (ModeFocused, the default): the DB text detector runs
// on a copy resized so its long side is Config.DetMaxSide (768) and it holds
// no more than a 16:9 frame's worth of pixels, keeping the aspect ratio; its
// probability map is thresholded, every blob becomes a rotated rectangle,
// grown a little ("unclipped") and mapped back to input pixels. Each
// rectangle is cut out of the full-resolution image with a perspective
// warp, scaled to height 48 and read by the CTC recogniser, whose output is
// restricted to A-Z and 0-9 (lower-case and full-width forms fold into
// their upper-case ASCII class). Texts of boxes that sit side by side on
// one line, or as two stacked lines (two-line plates), are also joined,
// since the detector often splits a plate ("ABC 1234"). Every text is
// scored as mean character probability times how plausible it is as a
// plate of Config.Region. Then the focused pass: the neighbourhood of the
// best candidate is detected again at a scale that makes its text about
// 30 px high (the first pass's boxes are coarse at its resolution) and read
// again; the candidates of both passes are ranked together (a reading that
// is a fragment of a competing longer one loses a little, as an end-trimmed
// reading does) and plates come back best first.
//
// Two more steps run only when the first two passes leave doubt, so the
// images read surely pay nothing for them:
//   - Rescue: when no candidate scores 0.4, the plate may be too small or
//     faint for the first pass's scale; the whole image is detected again
//     at a long side of 1280 and its best candidate focused on.
//   - Confirm: when the best plate's reading is uncertain (a competing
//     text within 90% of its score, a character below probability 0.8,
//     or a text that does not fit the region), the boxes of its two
//     leading texts are read again from two variant crops each (1.25x
//     wider, which reads condensed fonts better, and also 12% taller),
//     and every source (each pass, each variant crop) votes for the texts
//     it read at that place, weighted by score; see vote.
//
// Where a region has formats (eu, br, custom) and a reading fits none, it
// is also offered without one inner character when that makes it fit: the
// registration sticker or coat of arms between a plate's character groups
// often reads as one more character ("4B389376" for 4B3 9376).
//
// ModePlain is the reference pipeline issue 3 measures against (one
// detection at 960x544, every box read with the model's full alphabet, the
// longest 4-8 character string with a digit); bench --compare runs both.
//
// The recogniser is fed BGR planes, as PaddleOCR does (the model was trained
// on OpenCV's BGR decodes): RGB read 4% fewer plates of the us set.
//
// Caveats:
//   - ONNX Runtime is a process-wide environment: the first New loads the
//     shared library named by Config.LibPath and it stays loaded until the
//     process exits; a later New with another LibPath fails.
//   - A Recognizer is safe for use by one goroutine at a time; concurrent
//     calls are serialised by a mutex. Run one Recognizer per core for
//     parallelism.
//   - The package reads the model files in New and nothing else: it never
//     touches disk or network afterwards.
//   - Region fixes only swap look-alike characters (O/0, I/1, B/8, S/5, Z/2,
//     G/6) where a region's format demands a letter or a digit; they never
//     add or drop a character. Readings with a character dropped (end
//     trims, the inner drop above) are separate candidates that pay a
//     penalty, never a rewrite of the reading.
//   - Memory: ONNX Runtime's memory patterns are off (input shapes change
//     on every call); peak RSS of bench on the us set is about 380 MB, the
//     rescue pass's larger detector input included.
package recognize
