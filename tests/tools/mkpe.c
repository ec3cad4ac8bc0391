/*
 * mkpe: writes a minimal, well-formed PE32+ executable (one .text section
 * holding `ret` and the given note), the smallest file Authenticode tools
 * sign and verify.  The tests use it so that no Windows compiler and no
 * binary fixture are needed; the note makes each file's digest distinct.
 *
 *   mkpe OUT [NOTE]
 *
 * The layout: DOS header (e_lfanew 0x40), "PE\0\0", COFF header for
 * x86-64, the PE32+ optional header with 16 data directories (the
 * certificate table, directory 4, empty until a tool signs the file),
 * one section header; headers padded to FileAlignment 0x200, then the
 * section's 0x200 bytes.  The checksum is left 0: signers compute it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FILE_ALIGN 0x200
#define SECT_ALIGN 0x1000
#define PE_OFF 0x40
#define NDIRS 16
#define OPT_SIZE (112 + 8 * NDIRS)
#define TEXT_SIZE 0x200

static void
le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
	le16(p, (uint16_t)v);
	le16(p + 2, (uint16_t)(v >> 16));
}

static void
le64(uint8_t *p, uint64_t v)
{
	le32(p, (uint32_t)v);
	le32(p + 4, (uint32_t)(v >> 32));
}

int
main(int argc, char **argv)
{
	static uint8_t f[FILE_ALIGN + TEXT_SIZE];
	uint8_t *coff = f + PE_OFF + 4, *opt = coff + 20, *sec = opt + OPT_SIZE;
	const char *note = argc > 2 ? argv[2] : "";
	size_t n = strlen(note);
	FILE *out;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: mkpe OUT [NOTE]\n");
		return 2;
	}
	if (n > TEXT_SIZE - 1) {
		fprintf(stderr, "mkpe: the note is over %d bytes\n",
		    TEXT_SIZE - 1);
		return 2;
	}
	/* DOS header: the magic and where the PE header is. */
	memcpy(f, "MZ", 2);
	le32(f + 0x3c, PE_OFF);
	memcpy(f + PE_OFF, "PE\0\0", 4);
	/* COFF: AMD64, one section, executable and large-address aware. */
	le16(coff, 0x8664);
	le16(coff + 2, 1);
	le16(coff + 16, OPT_SIZE);
	le16(coff + 18, 0x0022);
	/* Optional header, PE32+. */
	le16(opt, 0x20b);
	le32(opt + 4, TEXT_SIZE);              /* SizeOfCode */
	le32(opt + 16, SECT_ALIGN);            /* AddressOfEntryPoint */
	le32(opt + 20, SECT_ALIGN);            /* BaseOfCode */
	le64(opt + 24, 0x140000000ULL);        /* ImageBase */
	le32(opt + 32, SECT_ALIGN);
	le32(opt + 36, FILE_ALIGN);
	le16(opt + 40, 6);                     /* OS version 6.0 */
	le16(opt + 48, 6);                     /* subsystem version 6.0 */
	le32(opt + 56, 2 * SECT_ALIGN);        /* SizeOfImage */
	le32(opt + 60, FILE_ALIGN);            /* SizeOfHeaders */
	le16(opt + 68, 3);                     /* console */
	le16(opt + 70, 0x8160);                /* DllCharacteristics */
	le64(opt + 72, 0x100000);              /* stack reserve */
	le64(opt + 80, 0x1000);                /* stack commit */
	le64(opt + 88, 0x100000);              /* heap reserve */
	le64(opt + 96, 0x1000);                /* heap commit */
	le32(opt + 108, NDIRS);
	/* The one section. */
	memcpy(sec, ".text", 5);
	le32(sec + 8, (uint32_t)(n + 1));      /* VirtualSize */
	le32(sec + 12, SECT_ALIGN);            /* VirtualAddress */
	le32(sec + 16, TEXT_SIZE);             /* SizeOfRawData */
	le32(sec + 20, FILE_ALIGN);            /* PointerToRawData */
	le32(sec + 36, 0x60000020);            /* code, execute, read */
	f[FILE_ALIGN] = 0xc3;                  /* ret */
	memcpy(f + FILE_ALIGN + 1, note, n);

	if ((out = fopen(argv[1], "wb")) == NULL) {
		perror(argv[1]);
		return 1;
	}
	n = fwrite(f, 1, sizeof(f), out);
	if (fclose(out) != 0 || n != sizeof(f)) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
