/**
 * Imported before cbor-x: turns off cbor-x's native string extraction
 * (cbor-extract), so that cbor-x decodes text in JavaScript. The native
 * extractor misreads text strings whose length has an 8-byte head (0x7b) when
 * other strings precede them in the same buffer ("Unexpected end of buffer
 * reading string"); the differential fuzz found it, and a reference decoder
 * must not have that bug.
 */
process.env.CBOR_NATIVE_ACCELERATION_DISABLED = 'true'
