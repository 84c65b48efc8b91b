/*
 * Container header probe for face images: format and pixel size read from
 * the header alone, so an oversized or truncated image is refused before a
 * decoder allocates anything. Only JPEG, PNG and JPEG 2000 (JP2 box format
 * and raw J2K codestream) are accepted: everything else OpenCV could decode
 * (TIFF, BMP, WebP, PPM, DICOM, ...) is attack surface we do not need.
 *
 * The probe only helps if cv::imdecode then runs the decoder the probe
 * parsed for. imdecode picks its own by signature, first match in its
 * registration order, and in Debian's OpenCV 4.6 the DICOM (GDCM) decoder
 * comes before the JPEG 2000 one and claims any buffer with "DICM" at offset
 * 128: a JP2 header in the first 128 bytes with a DICOM body behind it would
 * pass as a small JP2 and be decoded as a huge DICOM. So "DICM" there is
 * refused whatever the format, and a JP2 must have the box layout of the
 * standard with a codestream that agrees with its header. The pipeline also
 * refuses a decoded image whose size differs from the probe's.
 *
 * Every read goes through the bounded reader below. Thread-safe (pure).
 */
#include <string.h>

#include "err.h"
#include "face_pipeline.h"

struct rd {
	const uint8_t *p;
	size_t len, off;
};

static int
rd_u8(struct rd *r, uint32_t *v)
{
	if (r->len - r->off < 1)
		return AUTHD_ERR_TRUNCATED;
	*v = r->p[r->off++];
	return 0;
}

static int
rd_be(struct rd *r, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	if (r->len - r->off < n)
		return AUTHD_ERR_TRUNCATED;
	for (size_t i = 0; i < n; i++)
		x = (x << 8) | r->p[r->off + i];
	r->off += n;
	*v = x;
	return 0;
}

static int
rd_skip(struct rd *r, uint64_t n)
{
	if ((uint64_t)(r->len - r->off) < n)
		return AUTHD_ERR_TRUNCATED;
	r->off += (size_t)n;
	return 0;
}

static int
probe_jpeg(struct rd *r, int *w, int *h)
{
	uint32_t b, m;
	uint64_t seglen, v;

	TRY(rd_skip(r, 2)); /* SOI */
	for (;;) {
		TRY(rd_u8(r, &b));
		if (b != 0xff)
			return AUTHD_ERR_BAD_REQUEST;
		do
			TRY(rd_u8(r, &m));
		while (m == 0xff);
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd8))
			continue; /* standalone markers */
		if (m == 0xd9 || m == 0xda)
			return AUTHD_ERR_BAD_REQUEST; /* EOI/SOS before any frame header */
		TRY(rd_be(r, 2, &seglen));
		if (seglen < 2)
			return AUTHD_ERR_BAD_REQUEST;
		if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
			size_t sof = r->off;
			TRY(rd_skip(r, 1)); /* precision */
			TRY(rd_be(r, 2, &v));
			*h = (int)v;
			TRY(rd_be(r, 2, &v));
			*w = (int)v;
			/*
			 * A complete JPEG has an EOI after its frame header; a
			 * truncated upload has none and libjpeg would pad it with
			 * grey and call it a picture.
			 */
			for (size_t i = sof; i + 1 < r->len; i++)
				if (r->p[i] == 0xff && r->p[i + 1] == 0xd9)
					return 0;
			return AUTHD_ERR_TRUNCATED;
		}
		TRY(rd_skip(r, seglen - 2));
	}
}

static int
probe_png(struct rd *r, int *w, int *h)
{
	uint64_t len, type, v;
	uint32_t depth;

	TRY(rd_skip(r, 8));
	TRY(rd_be(r, 4, &len));
	TRY(rd_be(r, 4, &type));
	if (len != 13 || type != 0x49484452u) /* IHDR */
		return AUTHD_ERR_BAD_REQUEST;
	TRY(rd_be(r, 4, &v));
	*w = v > 0x7fffffff ? 0x7fffffff : (int)v;
	TRY(rd_be(r, 4, &v));
	*h = v > 0x7fffffff ? 0x7fffffff : (int)v;
	/*
	 * 16-bit samples: twice the decoded memory (RGBA at the pixel cap is
	 * 100 MB before conversion) for precision a face model never uses.
	 */
	TRY(rd_u8(r, &depth));
	if (depth == 16)
		return AUTHD_ERR_UNSUPPORTED;
	if (depth != 1 && depth != 2 && depth != 4 && depth != 8)
		return AUTHD_ERR_BAD_REQUEST;
	return 0;
}

/* J2K codestream main header: SOC, then SIZ (the image area is X - XO). */
static int
probe_j2k(struct rd *r, int *w, int *h)
{
	uint64_t soc_siz, x, y, xo, yo;

	TRY(rd_be(r, 4, &soc_siz));
	if (soc_siz != 0xff4fff51u)
		return AUTHD_ERR_BAD_REQUEST;
	TRY(rd_skip(r, 4)); /* Lsiz, Rsiz */
	TRY(rd_be(r, 4, &x));
	TRY(rd_be(r, 4, &y));
	TRY(rd_be(r, 4, &xo));
	TRY(rd_be(r, 4, &yo));
	if (xo >= x || yo >= y)
		return AUTHD_ERR_BAD_REQUEST;
	*w = x - xo > 0x7fffffff ? 0x7fffffff : (int)(x - xo);
	*h = y - yo > 0x7fffffff ? 0x7fffffff : (int)(y - yo);
	return 0;
}

/* Reads one box header; *body is the payload length. */
static int
jp2_box(struct rd *r, uint64_t *type, uint64_t *body)
{
	uint64_t lbox, xl;

	TRY(rd_be(r, 4, &lbox));
	TRY(rd_be(r, 4, type));
	if (lbox == 1) {
		TRY(rd_be(r, 8, &xl));
		if (xl < 16)
			return AUTHD_ERR_BAD_REQUEST;
		*body = xl - 16;
	} else if (lbox == 0) {
		*body = r->len - r->off;
	} else {
		if (lbox < 8)
			return AUTHD_ERR_BAD_REQUEST;
		*body = lbox - 8;
	}
	if (*body > (uint64_t)(r->len - r->off))
		return AUTHD_ERR_TRUNCATED;
	return 0;
}

#define BOX_FTYP 0x66747970u  /* "ftyp" */
#define BOX_JP2H 0x6a703268u  /* "jp2h" */
#define BOX_IHDR 0x69686472u  /* "ihdr" */
#define BOX_JP2C 0x6a703263u  /* "jp2c" */
#define BRAND_JP2 0x6a703220u /* "jp2 " */

/*
 * JP2 (ISO/IEC 15444-1 annex I): the signature box, the File Type box right
 * after it listing "jp2 " as compatible, one JP2 Header box (jp2h) whose
 * first box is the Image Header (ihdr), and, after it, the Contiguous
 * Codestream box (jp2c) whose SIZ gives the same size as ihdr. Boxes in
 * between (xml, uuid, res, ...) are skipped; nothing after jp2c is read.
 */
static int
probe_jp2(struct rd *r, int *w, int *h)
{
	uint64_t type, body, v, brand, ih = 0, iw = 0;
	int have_ihdr = 0, jp2_brand = 0, cw, ch;

	TRY(rd_skip(r, 12)); /* signature box, matched by the caller */
	TRY(jp2_box(r, &type, &body));
	if (type != BOX_FTYP || body < 8 || body % 4 != 0)
		return AUTHD_ERR_BAD_REQUEST;
	TRY(rd_skip(r, 8)); /* brand, minor version */
	for (uint64_t i = 8; i < body; i += 4) {
		TRY(rd_be(r, 4, &brand));
		jp2_brand |= brand == BRAND_JP2;
	}
	if (!jp2_brand)
		return AUTHD_ERR_BAD_REQUEST;
	while (r->off < r->len) {
		TRY(jp2_box(r, &type, &body));
		struct rd sub = {r->p + r->off, (size_t)body, 0};
		if (type == BOX_JP2H) {
			if (have_ihdr)
				return AUTHD_ERR_BAD_REQUEST; /* a second header */
			TRY(jp2_box(&sub, &type, &v));
			if (type != BOX_IHDR || v != 14)
				return AUTHD_ERR_BAD_REQUEST;
			TRY(rd_be(&sub, 4, &ih));
			TRY(rd_be(&sub, 4, &iw));
			have_ihdr = 1;
		} else if (type == BOX_JP2C) {
			if (!have_ihdr)
				return AUTHD_ERR_BAD_REQUEST;
			TRY(probe_j2k(&sub, &cw, &ch));
			if ((uint64_t)cw != iw || (uint64_t)ch != ih)
				return AUTHD_ERR_BAD_REQUEST;
			*w = cw;
			*h = ch;
			return 0;
		}
		TRY(rd_skip(r, body));
	}
	return AUTHD_ERR_BAD_REQUEST;
}

int
face_image_probe(const uint8_t *img, size_t len, const char **format, int *w, int *h)
{
	static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
	static const uint8_t jp2_sig[12] = {0, 0, 0, 0x0c, 'j', 'P', ' ', ' ', 0x0d, 0x0a, 0x87, 0x0a};
	static const uint8_t j2k_sig[4] = {0xff, 0x4f, 0xff, 0x51};
	static const uint8_t dicm[4] = {'D', 'I', 'C', 'M'};
	struct rd r = {img, len, 0};
	int rc;

	*format = NULL;
	*w = *h = 0;
	if (img == NULL || len < 16)
		return AUTHD_ERR_TRUNCATED;
	/* OpenCV's DICOM decoder would claim it, whatever the first bytes say. */
	if (len >= 132 && memcmp(img + 128, dicm, sizeof(dicm)) == 0)
		return AUTHD_ERR_UNSUPPORTED;
	if (img[0] == 0xff && img[1] == 0xd8) {
		*format = "jpeg";
		rc = probe_jpeg(&r, w, h);
	} else if (memcmp(img, png_sig, sizeof(png_sig)) == 0) {
		*format = "png";
		rc = probe_png(&r, w, h);
	} else if (memcmp(img, jp2_sig, sizeof(jp2_sig)) == 0) {
		*format = "jp2";
		rc = probe_jp2(&r, w, h);
	} else if (memcmp(img, j2k_sig, sizeof(j2k_sig)) == 0) {
		*format = "j2k";
		rc = probe_j2k(&r, w, h);
	} else {
		return AUTHD_ERR_UNSUPPORTED;
	}
	if (rc < 0)
		return rc;
	if (*w <= 0 || *h <= 0)
		return AUTHD_ERR_BAD_REQUEST;
	if (*w > FACE_MAX_SIDE || *h > FACE_MAX_SIDE || (uint64_t)*w * (uint64_t)*h > FACE_MAX_PIXELS)
		return AUTHD_ERR_TOO_LARGE;
	return 0;
}
