/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_codec_wbxml.c - the WBXML codec: decoding libwbxml-made and
 * hand-made WBXML into the model, byte-exact values (opaque, NUL, 0xFF,
 * bare "\n"), limits, malformed input, and encode -> decode round trips
 * (cross-checked against libwbxml's own WBXML -> XML converter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <wbxml/wbxml.h>

#include "codec.h"
#include "internal.h"
#include "model.h"

/*
 * Sample messages: the XML bodies come from the fleet POC server README
 * (fleetdm/fleet, tools/mdm/windows/poc-mdm-server/README.md, real Windows
 * 10 client traffic; MIT licence, "Copyright (c) 2021 Oscar Beaumont").
 * The WBXML encodings are the project's own, made with Debian's xml2wbxml
 * (libwbxml 0.11.8): pkg2_v13 with a string table (WBXML 1.3), pkg2_v12
 * and pkg3_v12 without (-n -v 1.2).  srv_v12 is a server message written
 * for this test (Cred, header Meta, Status with Chal, Get, Add, Exec,
 * Atomic), also encoded with xml2wbxml -n -v 1.2.
 */
static const uint8_t pkg2_v13[] = {
    0x03, 0xa4, 0x01, 0x6a, 0x58, 0x41, 0x6c, 0x65, 0x72, 0x74, 0x00, 0x74,
    0x65, 0x78, 0x74, 0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x00, 0x68, 0x74,
    0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x66, 0x6c, 0x65, 0x65, 0x74, 0x64,
    0x6d, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x73,
    0x2f, 0x61, 0x72, 0x74, 0x69, 0x63, 0x6c, 0x65, 0x73, 0x2f, 0x66, 0x6c,
    0x65, 0x65, 0x74, 0x2d, 0x34, 0x2e, 0x32, 0x34, 0x2e, 0x30, 0x2d, 0x63,
    0x6f, 0x76, 0x65, 0x72, 0x2d, 0x31, 0x36, 0x30, 0x30, 0x78, 0x39, 0x30,
    0x30, 0x40, 0x32, 0x78, 0x2e, 0x6a, 0x70, 0x67, 0x00, 0x6d, 0x6c, 0x71,
    0x03, 0x31, 0x2e, 0x32, 0x00, 0x01, 0x72, 0x03, 0x44, 0x4d, 0x2f, 0x31,
    0x2e, 0x32, 0x00, 0x01, 0x65, 0x03, 0x31, 0x00, 0x01, 0x5b, 0x03, 0x31,
    0x00, 0x01, 0x6e, 0x57, 0x03, 0x31, 0x45, 0x30, 0x38, 0x43, 0x36, 0x45,
    0x39, 0x35, 0x44, 0x38, 0x42, 0x42, 0x38, 0x34, 0x33, 0x42, 0x31, 0x32,
    0x37, 0x38, 0x46, 0x46, 0x34, 0x35, 0x42, 0x43, 0x36, 0x30, 0x43, 0x43,
    0x36, 0x00, 0x01, 0x01, 0x67, 0x57, 0x03, 0x68, 0x74, 0x74, 0x70, 0x73,
    0x3a, 0x2f, 0x2f, 0x6d, 0x64, 0x6d, 0x77, 0x69, 0x6e, 0x64, 0x6f, 0x77,
    0x73, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x4d, 0x61, 0x6e, 0x61, 0x67, 0x65,
    0x6d, 0x65, 0x6e, 0x74, 0x53, 0x65, 0x72, 0x76, 0x65, 0x72, 0x2f, 0x4d,
    0x44, 0x4d, 0x2e, 0x73, 0x76, 0x63, 0x00, 0x01, 0x01, 0x01, 0x6b, 0x69,
    0x4b, 0x03, 0x31, 0x00, 0x01, 0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03,
    0x30, 0x00, 0x01, 0x4a, 0x03, 0x53, 0x79, 0x6e, 0x63, 0x48, 0x64, 0x72,
    0x00, 0x01, 0x4f, 0x03, 0x32, 0x30, 0x30, 0x00, 0x01, 0x01, 0x69, 0x4b,
    0x03, 0x32, 0x00, 0x01, 0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x32,
    0x00, 0x01, 0x4a, 0x83, 0x00, 0x01, 0x4f, 0x03, 0x32, 0x30, 0x30, 0x00,
    0x01, 0x01, 0x69, 0x4b, 0x03, 0x33, 0x00, 0x01, 0x5c, 0x03, 0x31, 0x00,
    0x01, 0x4c, 0x03, 0x33, 0x00, 0x01, 0x4a, 0x83, 0x00, 0x01, 0x4f, 0x03,
    0x32, 0x30, 0x30, 0x00, 0x01, 0x01, 0x69, 0x4b, 0x03, 0x34, 0x00, 0x01,
    0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x34, 0x00, 0x01, 0x4a, 0x03,
    0x52, 0x65, 0x70, 0x6c, 0x61, 0x63, 0x65, 0x00, 0x01, 0x4f, 0x03, 0x32,
    0x30, 0x30, 0x00, 0x01, 0x01, 0x60, 0x4b, 0x03, 0x35, 0x00, 0x01, 0x54,
    0x6e, 0x57, 0x03, 0x2e, 0x2f, 0x56, 0x65, 0x6e, 0x64, 0x6f, 0x72, 0x2f,
    0x4d, 0x53, 0x46, 0x54, 0x2f, 0x50, 0x65, 0x72, 0x73, 0x6f, 0x6e, 0x61,
    0x6c, 0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x44, 0x65, 0x73,
    0x6b, 0x74, 0x6f, 0x70, 0x49, 0x6d, 0x61, 0x67, 0x65, 0x55, 0x72, 0x6c,
    0x00, 0x01, 0x01, 0x5a, 0x00, 0x01, 0x47, 0x03, 0x63, 0x68, 0x72, 0x00,
    0x01, 0x53, 0x83, 0x06, 0x01, 0x01, 0x00, 0x00, 0x4f, 0xc3, 0x46, 0x68,
    0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x66, 0x6c, 0x65, 0x65, 0x74,
    0x64, 0x6d, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x69, 0x6d, 0x61, 0x67, 0x65,
    0x73, 0x2f, 0x61, 0x72, 0x74, 0x69, 0x63, 0x6c, 0x65, 0x73, 0x2f, 0x66,
    0x6c, 0x65, 0x65, 0x74, 0x2d, 0x34, 0x2e, 0x32, 0x34, 0x2e, 0x30, 0x2d,
    0x63, 0x6f, 0x76, 0x65, 0x72, 0x2d, 0x31, 0x36, 0x30, 0x30, 0x78, 0x39,
    0x30, 0x30, 0x40, 0x32, 0x78, 0x2e, 0x6a, 0x70, 0x67, 0x01, 0x01, 0x01,
    0x60, 0x4b, 0x03, 0x36, 0x00, 0x01, 0x54, 0x6e, 0x57, 0x03, 0x2e, 0x2f,
    0x56, 0x65, 0x6e, 0x64, 0x6f, 0x72, 0x2f, 0x4d, 0x53, 0x46, 0x54, 0x2f,
    0x50, 0x65, 0x72, 0x73, 0x6f, 0x6e, 0x61, 0x6c, 0x69, 0x7a, 0x61, 0x74,
    0x69, 0x6f, 0x6e, 0x2f, 0x4c, 0x6f, 0x63, 0x6b, 0x53, 0x63, 0x72, 0x65,
    0x65, 0x6e, 0x49, 0x6d, 0x61, 0x67, 0x65, 0x55, 0x72, 0x6c, 0x00, 0x01,
    0x01, 0x5a, 0x00, 0x01, 0x47, 0x03, 0x63, 0x68, 0x72, 0x00, 0x01, 0x53,
    0x83, 0x06, 0x01, 0x01, 0x00, 0x00, 0x4f, 0xc3, 0x46, 0x68, 0x74, 0x74,
    0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x66, 0x6c, 0x65, 0x65, 0x74, 0x64, 0x6d,
    0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x73, 0x2f,
    0x61, 0x72, 0x74, 0x69, 0x63, 0x6c, 0x65, 0x73, 0x2f, 0x66, 0x6c, 0x65,
    0x65, 0x74, 0x2d, 0x34, 0x2e, 0x32, 0x34, 0x2e, 0x30, 0x2d, 0x63, 0x6f,
    0x76, 0x65, 0x72, 0x2d, 0x31, 0x36, 0x30, 0x30, 0x78, 0x39, 0x30, 0x30,
    0x40, 0x32, 0x78, 0x2e, 0x6a, 0x70, 0x67, 0x01, 0x01, 0x01, 0x12, 0x01,
    0x01,
};

static const uint8_t pkg2_v12[] = {
    0x02, 0xa4, 0x01, 0x6a, 0x00, 0x6d, 0x6c, 0x71, 0x03, 0x31, 0x2e, 0x32,
    0x00, 0x01, 0x72, 0x03, 0x44, 0x4d, 0x2f, 0x31, 0x2e, 0x32, 0x00, 0x01,
    0x65, 0x03, 0x31, 0x00, 0x01, 0x5b, 0x03, 0x31, 0x00, 0x01, 0x6e, 0x57,
    0x03, 0x31, 0x45, 0x30, 0x38, 0x43, 0x36, 0x45, 0x39, 0x35, 0x44, 0x38,
    0x42, 0x42, 0x38, 0x34, 0x33, 0x42, 0x31, 0x32, 0x37, 0x38, 0x46, 0x46,
    0x34, 0x35, 0x42, 0x43, 0x36, 0x30, 0x43, 0x43, 0x36, 0x00, 0x01, 0x01,
    0x67, 0x57, 0x03, 0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x6d,
    0x64, 0x6d, 0x77, 0x69, 0x6e, 0x64, 0x6f, 0x77, 0x73, 0x2e, 0x63, 0x6f,
    0x6d, 0x2f, 0x4d, 0x61, 0x6e, 0x61, 0x67, 0x65, 0x6d, 0x65, 0x6e, 0x74,
    0x53, 0x65, 0x72, 0x76, 0x65, 0x72, 0x2f, 0x4d, 0x44, 0x4d, 0x2e, 0x73,
    0x76, 0x63, 0x00, 0x01, 0x01, 0x01, 0x6b, 0x69, 0x4b, 0x03, 0x31, 0x00,
    0x01, 0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x30, 0x00, 0x01, 0x4a,
    0x03, 0x53, 0x79, 0x6e, 0x63, 0x48, 0x64, 0x72, 0x00, 0x01, 0x4f, 0x03,
    0x32, 0x30, 0x30, 0x00, 0x01, 0x01, 0x69, 0x4b, 0x03, 0x32, 0x00, 0x01,
    0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x32, 0x00, 0x01, 0x4a, 0x03,
    0x41, 0x6c, 0x65, 0x72, 0x74, 0x00, 0x01, 0x4f, 0x03, 0x32, 0x30, 0x30,
    0x00, 0x01, 0x01, 0x69, 0x4b, 0x03, 0x33, 0x00, 0x01, 0x5c, 0x03, 0x31,
    0x00, 0x01, 0x4c, 0x03, 0x33, 0x00, 0x01, 0x4a, 0x03, 0x41, 0x6c, 0x65,
    0x72, 0x74, 0x00, 0x01, 0x4f, 0x03, 0x32, 0x30, 0x30, 0x00, 0x01, 0x01,
    0x69, 0x4b, 0x03, 0x34, 0x00, 0x01, 0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c,
    0x03, 0x34, 0x00, 0x01, 0x4a, 0x03, 0x52, 0x65, 0x70, 0x6c, 0x61, 0x63,
    0x65, 0x00, 0x01, 0x4f, 0x03, 0x32, 0x30, 0x30, 0x00, 0x01, 0x01, 0x60,
    0x4b, 0x03, 0x35, 0x00, 0x01, 0x54, 0x6e, 0x57, 0x03, 0x2e, 0x2f, 0x56,
    0x65, 0x6e, 0x64, 0x6f, 0x72, 0x2f, 0x4d, 0x53, 0x46, 0x54, 0x2f, 0x50,
    0x65, 0x72, 0x73, 0x6f, 0x6e, 0x61, 0x6c, 0x69, 0x7a, 0x61, 0x74, 0x69,
    0x6f, 0x6e, 0x2f, 0x44, 0x65, 0x73, 0x6b, 0x74, 0x6f, 0x70, 0x49, 0x6d,
    0x61, 0x67, 0x65, 0x55, 0x72, 0x6c, 0x00, 0x01, 0x01, 0x5a, 0x00, 0x01,
    0x47, 0x03, 0x63, 0x68, 0x72, 0x00, 0x01, 0x53, 0x03, 0x74, 0x65, 0x78,
    0x74, 0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x00, 0x01, 0x01, 0x00, 0x00,
    0x4f, 0xc3, 0x46, 0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x66,
    0x6c, 0x65, 0x65, 0x74, 0x64, 0x6d, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x69,
    0x6d, 0x61, 0x67, 0x65, 0x73, 0x2f, 0x61, 0x72, 0x74, 0x69, 0x63, 0x6c,
    0x65, 0x73, 0x2f, 0x66, 0x6c, 0x65, 0x65, 0x74, 0x2d, 0x34, 0x2e, 0x32,
    0x34, 0x2e, 0x30, 0x2d, 0x63, 0x6f, 0x76, 0x65, 0x72, 0x2d, 0x31, 0x36,
    0x30, 0x30, 0x78, 0x39, 0x30, 0x30, 0x40, 0x32, 0x78, 0x2e, 0x6a, 0x70,
    0x67, 0x01, 0x01, 0x01, 0x60, 0x4b, 0x03, 0x36, 0x00, 0x01, 0x54, 0x6e,
    0x57, 0x03, 0x2e, 0x2f, 0x56, 0x65, 0x6e, 0x64, 0x6f, 0x72, 0x2f, 0x4d,
    0x53, 0x46, 0x54, 0x2f, 0x50, 0x65, 0x72, 0x73, 0x6f, 0x6e, 0x61, 0x6c,
    0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x4c, 0x6f, 0x63, 0x6b,
    0x53, 0x63, 0x72, 0x65, 0x65, 0x6e, 0x49, 0x6d, 0x61, 0x67, 0x65, 0x55,
    0x72, 0x6c, 0x00, 0x01, 0x01, 0x5a, 0x00, 0x01, 0x47, 0x03, 0x63, 0x68,
    0x72, 0x00, 0x01, 0x53, 0x03, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x70, 0x6c,
    0x61, 0x69, 0x6e, 0x00, 0x01, 0x01, 0x00, 0x00, 0x4f, 0xc3, 0x46, 0x68,
    0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x66, 0x6c, 0x65, 0x65, 0x74,
    0x64, 0x6d, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x69, 0x6d, 0x61, 0x67, 0x65,
    0x73, 0x2f, 0x61, 0x72, 0x74, 0x69, 0x63, 0x6c, 0x65, 0x73, 0x2f, 0x66,
    0x6c, 0x65, 0x65, 0x74, 0x2d, 0x34, 0x2e, 0x32, 0x34, 0x2e, 0x30, 0x2d,
    0x63, 0x6f, 0x76, 0x65, 0x72, 0x2d, 0x31, 0x36, 0x30, 0x30, 0x78, 0x39,
    0x30, 0x30, 0x40, 0x32, 0x78, 0x2e, 0x6a, 0x70, 0x67, 0x01, 0x01, 0x01,
    0x12, 0x01, 0x01,
};

static const uint8_t pkg3_v12[] = {
    0x02, 0xa4, 0x01, 0x6a, 0x00, 0x6d, 0x6c, 0x71, 0x03, 0x31, 0x2e, 0x32,
    0x00, 0x01, 0x72, 0x03, 0x44, 0x4d, 0x2f, 0x31, 0x2e, 0x32, 0x00, 0x01,
    0x65, 0x03, 0x31, 0x00, 0x01, 0x5b, 0x03, 0x32, 0x00, 0x01, 0x6e, 0x57,
    0x03, 0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x6d, 0x64, 0x6d,
    0x77, 0x69, 0x6e, 0x64, 0x6f, 0x77, 0x73, 0x2e, 0x63, 0x6f, 0x6d, 0x2f,
    0x4d, 0x61, 0x6e, 0x61, 0x67, 0x65, 0x6d, 0x65, 0x6e, 0x74, 0x53, 0x65,
    0x72, 0x76, 0x65, 0x72, 0x2f, 0x4d, 0x44, 0x4d, 0x2e, 0x73, 0x76, 0x63,
    0x00, 0x01, 0x01, 0x67, 0x57, 0x03, 0x31, 0x45, 0x30, 0x38, 0x43, 0x36,
    0x45, 0x39, 0x35, 0x44, 0x38, 0x42, 0x42, 0x38, 0x34, 0x33, 0x42, 0x31,
    0x32, 0x37, 0x38, 0x46, 0x46, 0x34, 0x35, 0x42, 0x43, 0x36, 0x30, 0x43,
    0x43, 0x36, 0x00, 0x01, 0x01, 0x01, 0x6b, 0x69, 0x4b, 0x03, 0x31, 0x00,
    0x01, 0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x30, 0x00, 0x01, 0x4a,
    0x03, 0x53, 0x79, 0x6e, 0x63, 0x48, 0x64, 0x72, 0x00, 0x01, 0x4f, 0x03,
    0x32, 0x30, 0x30, 0x00, 0x01, 0x01, 0x69, 0x4b, 0x03, 0x32, 0x00, 0x01,
    0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x35, 0x00, 0x01, 0x4a, 0x03,
    0x52, 0x65, 0x70, 0x6c, 0x61, 0x63, 0x65, 0x00, 0x01, 0x4f, 0x03, 0x32,
    0x30, 0x32, 0x00, 0x01, 0x01, 0x69, 0x4b, 0x03, 0x33, 0x00, 0x01, 0x5c,
    0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x36, 0x00, 0x01, 0x4a, 0x03, 0x52,
    0x65, 0x70, 0x6c, 0x61, 0x63, 0x65, 0x00, 0x01, 0x4f, 0x03, 0x32, 0x30,
    0x32, 0x00, 0x01, 0x01, 0x12, 0x01, 0x01,
};

static const uint8_t srv_v12[] = {
    0x02, 0xa4, 0x01, 0x6a, 0x00, 0x6d, 0x6c, 0x71, 0x03, 0x31, 0x2e, 0x32,
    0x00, 0x01, 0x72, 0x03, 0x44, 0x4d, 0x2f, 0x31, 0x2e, 0x32, 0x00, 0x01,
    0x65, 0x03, 0x34, 0x41, 0x31, 0x00, 0x01, 0x5b, 0x03, 0x32, 0x00, 0x01,
    0x6e, 0x57, 0x03, 0x49, 0x4d, 0x45, 0x49, 0x3a, 0x34, 0x39, 0x33, 0x30,
    0x30, 0x35, 0x31, 0x30, 0x30, 0x35, 0x39, 0x32, 0x38, 0x30, 0x30, 0x00,
    0x01, 0x01, 0x67, 0x57, 0x03, 0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f,
    0x2f, 0x64, 0x6d, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e,
    0x63, 0x6f, 0x6d, 0x2f, 0x64, 0x6d, 0x00, 0x01, 0x56, 0x03, 0x73, 0x72,
    0x76, 0x00, 0x01, 0x01, 0x4e, 0x5a, 0x00, 0x01, 0x47, 0x03, 0x62, 0x36,
    0x34, 0x00, 0x01, 0x53, 0x03, 0x73, 0x79, 0x6e, 0x63, 0x6d, 0x6c, 0x3a,
    0x61, 0x75, 0x74, 0x68, 0x2d, 0x6d, 0x64, 0x35, 0x00, 0x01, 0x01, 0x00,
    0x00, 0x4f, 0x03, 0x5a, 0x6d, 0x39, 0x76, 0x59, 0x6d, 0x46, 0x79, 0x00,
    0x01, 0x01, 0x5a, 0x00, 0x01, 0x4c, 0x03, 0x31, 0x30, 0x30, 0x30, 0x30,
    0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x6b, 0x69, 0x4b, 0x03, 0x31, 0x00,
    0x01, 0x5c, 0x03, 0x31, 0x00, 0x01, 0x4c, 0x03, 0x30, 0x00, 0x01, 0x4a,
    0x03, 0x53, 0x79, 0x6e, 0x63, 0x48, 0x64, 0x72, 0x00, 0x01, 0x6f, 0x03,
    0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x64, 0x6d, 0x2e, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x64,
    0x6d, 0x00, 0x01, 0x68, 0x03, 0x49, 0x4d, 0x45, 0x49, 0x3a, 0x34, 0x39,
    0x33, 0x30, 0x30, 0x35, 0x31, 0x30, 0x30, 0x35, 0x39, 0x32, 0x38, 0x30,
    0x30, 0x00, 0x01, 0x49, 0x5a, 0x00, 0x01, 0x47, 0x03, 0x62, 0x36, 0x34,
    0x00, 0x01, 0x53, 0x03, 0x73, 0x79, 0x6e, 0x63, 0x6d, 0x6c, 0x3a, 0x61,
    0x75, 0x74, 0x68, 0x2d, 0x6d, 0x64, 0x35, 0x00, 0x01, 0x50, 0x03, 0x5a,
    0x47, 0x39, 0x76, 0x5a, 0x47, 0x78, 0x6c, 0x00, 0x01, 0x01, 0x01, 0x00,
    0x00, 0x4f, 0x03, 0x32, 0x31, 0x32, 0x00, 0x01, 0x01, 0x53, 0x4b, 0x03,
    0x32, 0x00, 0x01, 0x54, 0x6e, 0x57, 0x03, 0x2e, 0x2f, 0x44, 0x65, 0x76,
    0x49, 0x6e, 0x66, 0x6f, 0x2f, 0x44, 0x65, 0x76, 0x49, 0x64, 0x00, 0x01,
    0x01, 0x01, 0x54, 0x6e, 0x57, 0x03, 0x2e, 0x2f, 0x44, 0x65, 0x76, 0x44,
    0x65, 0x74, 0x61, 0x69, 0x6c, 0x2f, 0x53, 0x77, 0x56, 0x00, 0x01, 0x01,
    0x01, 0x01, 0x45, 0x4b, 0x03, 0x33, 0x00, 0x01, 0x5a, 0x00, 0x01, 0x47,
    0x03, 0x69, 0x6e, 0x74, 0x00, 0x01, 0x01, 0x00, 0x00, 0x54, 0x6e, 0x57,
    0x03, 0x2e, 0x2f, 0x56, 0x65, 0x6e, 0x64, 0x6f, 0x72, 0x2f, 0x58, 0x2f,
    0x43, 0x6f, 0x75, 0x6e, 0x74, 0x00, 0x01, 0x01, 0x4f, 0xc3, 0x02, 0x34,
    0x32, 0x01, 0x01, 0x01, 0x51, 0x4b, 0x03, 0x34, 0x00, 0x01, 0x7c, 0x03,
    0x61, 0x62, 0x63, 0x00, 0x01, 0x54, 0x6e, 0x57, 0x03, 0x2e, 0x2f, 0x56,
    0x65, 0x6e, 0x64, 0x6f, 0x72, 0x2f, 0x58, 0x2f, 0x52, 0x65, 0x62, 0x6f,
    0x6f, 0x74, 0x00, 0x01, 0x01, 0x01, 0x01, 0x48, 0x4b, 0x03, 0x35, 0x00,
    0x01, 0x50, 0x4b, 0x03, 0x36, 0x00, 0x01, 0x54, 0x6e, 0x57, 0x03, 0x2e,
    0x2f, 0x56, 0x65, 0x6e, 0x64, 0x6f, 0x72, 0x2f, 0x58, 0x2f, 0x4f, 0x6c,
    0x64, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x12, 0x01, 0x01,
};


/* ---- helpers -------------------------------------------------------------- */

/* WBXML tokens, written out independently of the codec's table. */
enum {
    T_CMD = 0x0A, T_CMDID = 0x0B, T_CMDREF = 0x0C, T_DATA = 0x0F, T_FINAL = 0x12,
    T_ITEM = 0x14, T_LOCURI = 0x17, T_META = 0x1A, T_MSGID = 0x1B, T_MSGREF = 0x1C,
    T_REPLACE = 0x20, T_SESSIONID = 0x25, T_SOURCE = 0x27, T_STATUS = 0x29,
    T_SYNCBODY = 0x2B, T_SYNCHDR = 0x2C, T_SYNCML = 0x2D, T_TARGET = 0x2E,
    T_VERDTD = 0x31, T_VERPROTO = 0x32,
    M_FORMAT = 0x07, M_TYPE = 0x13 /* code page 1 */
};

typedef struct wb {
    uint8_t *b;
    size_t n, cap;
} wb_t;

static void wb_init(wb_t *w, size_t cap)
{
    w->b = malloc(cap);
    assert_non_null(w->b);
    w->n = 0;
    w->cap = cap;
}

static void put(wb_t *w, const void *p, size_t n)
{
    assert_true(w->n + n <= w->cap);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void byte(wb_t *w, uint8_t c)
{
    put(w, &c, 1);
}

static void mb(wb_t *w, uint32_t v)
{
    uint8_t tmp[5];
    int n = 0;
    do {
        tmp[4 - n] = (uint8_t)((v & 0x7F) | (n ? 0x80 : 0));
        v >>= 7;
        n++;
    } while (v);
    put(w, tmp + 5 - n, (size_t)n);
}

static void open_tag(wb_t *w, uint8_t tok)
{
    byte(w, tok | 0x40);
}

static void end(wb_t *w)
{
    byte(w, 0x01);
}

static void str_i(wb_t *w, const char *s)
{
    byte(w, 0x03);
    put(w, s, strlen(s) + 1);
}

static void opaque(wb_t *w, const void *p, size_t n)
{
    byte(w, 0xC3);
    mb(w, (uint32_t)n);
    put(w, p, n);
}

static void leaf(wb_t *w, uint8_t tok, const char *s)
{
    open_tag(w, tok);
    str_i(w, s);
    end(w);
}

static void page(wb_t *w, uint8_t p)
{
    byte(w, 0x00);
    byte(w, p);
}

static void std_header(wb_t *w)
{
    static const uint8_t h[] = {0x02, 0xA4, 0x01, 0x6A, 0x00};
    put(w, h, sizeof h);
}

/* <SyncML><SyncHdr>...</SyncHdr><SyncBody> after whatever header w holds. */
static void open_body(wb_t *w, const char *verdtd)
{
    open_tag(w, T_SYNCML);
    open_tag(w, T_SYNCHDR);
    leaf(w, T_VERDTD, verdtd);
    leaf(w, T_VERPROTO, "DM/1.2");
    leaf(w, T_SESSIONID, "7");
    leaf(w, T_MSGID, "3");
    open_tag(w, T_TARGET);
    leaf(w, T_LOCURI, "dev");
    end(w);
    open_tag(w, T_SOURCE);
    leaf(w, T_LOCURI, "srv");
    end(w);
    end(w);
    open_tag(w, T_SYNCBODY);
}

static void close_body(wb_t *w)
{
    byte(w, T_FINAL);
    end(w);
    end(w);
}

/* <Replace><CmdID>1</CmdID><Item><Target><LocURI>./x</LocURI></Target><Data> */
static void open_replace_data(wb_t *w)
{
    open_tag(w, T_REPLACE);
    leaf(w, T_CMDID, "1");
    open_tag(w, T_ITEM);
    open_tag(w, T_TARGET);
    leaf(w, T_LOCURI, "./x");
    end(w);
    open_tag(w, T_DATA);
}

static void close_replace_data(wb_t *w)
{
    end(w);
    end(w);
    end(w);
}

static omadm_t *new_dm(size_t max_msg_size, unsigned max_depth)
{
    omadm_config_t cfg;
    omadm_t *dm = NULL;
    omadm_config_init(&cfg);
    if (max_msg_size)
        cfg.max_msg_size = max_msg_size;
    if (max_depth)
        cfg.max_depth = max_depth;
    assert_int_equal(omadm_new(&cfg, NULL, NULL, &dm), OMADM_OK);
    return dm;
}

static int setup(void **state)
{
    *state = new_dm(0, 0);
    return 0;
}

static int teardown(void **state)
{
    omadm_free(*state);
    return 0;
}

static omadm_error_t decode(omadm_t *dm, const uint8_t *in, size_t len, syncml_msg_t *msg,
                            const char **detail)
{
    syncml_msg_init(msg, dm);
    return codec_wbxml_decode(dm, in, len, msg, detail);
}

static const syncml_cmd_t *cmd_at(const syncml_msg_t *msg, size_t i)
{
    const syncml_cmd_t *c = msg->cmds;
    while (c && i--)
        c = c->next;
    assert_non_null(c);
    return c;
}

static size_t n_cmds(const syncml_msg_t *msg)
{
    size_t n = 0;
    for (const syncml_cmd_t *c = msg->cmds; c; c = c->next)
        n++;
    return n;
}

static void assert_bytes(const uint8_t *got, size_t got_len, const void *want, size_t want_len)
{
    assert_int_equal(got_len, want_len);
    if (want_len)
        assert_memory_equal(got, want, want_len);
}

static void assert_status(const syncml_cmd_t *c, const char *id, const char *msg_ref,
                          const char *cmd_ref, const char *cmd, const char *code)
{
    assert_int_equal(c->type, SYNCML_CMD_STATUS);
    assert_string_equal(c->cmd_id, id);
    assert_string_equal(c->msg_ref, msg_ref);
    assert_string_equal(c->cmd_ref, cmd_ref);
    assert_string_equal(c->cmd, cmd);
    assert_true(c->has_data);
    assert_bytes(c->data, c->data_len, code, strlen(code));
}

/* ---- detection ------------------------------------------------------------ */

static void test_detect(void **state)
{
    (void)state;
    assert_int_equal(codec_detect(pkg2_v13, sizeof pkg2_v13), SYNCML_ENC_WBXML);
    assert_int_equal(codec_detect(pkg2_v12, sizeof pkg2_v12), SYNCML_ENC_WBXML);
    assert_int_equal(codec_detect((const uint8_t *)"<SyncML>", 8), SYNCML_ENC_XML);
    assert_int_equal(codec_detect((const uint8_t *)"\xEF\xBB\xBF<?xml", 8), SYNCML_ENC_XML);
    assert_int_equal(codec_detect((const uint8_t *)"\x02", 1), SYNCML_ENC_XML);
    assert_int_equal(codec_detect((const uint8_t *)"\x02\x80\x80\x80\x80\x80", 6),
                     SYNCML_ENC_XML);
    assert_int_equal(codec_detect(NULL, 0), SYNCML_ENC_XML);
}

/* ---- decoding libwbxml-made samples --------------------------------------- */

static const char desktop_url[] =
    "https://fleetdm.com/images/articles/fleet-4.24.0-cover-1600x900@2x.jpg";

static void check_pkg2(omadm_t *dm, const uint8_t *in, size_t len)
{
    syncml_msg_t msg;
    const char *detail = "unset";
    assert_int_equal(decode(dm, in, len, &msg, &detail), OMADM_OK);
    assert_null(detail);
    assert_int_equal(msg.enc, SYNCML_ENC_WBXML);
    assert_string_equal(msg.hdr.ver_dtd, "1.2");
    assert_string_equal(msg.hdr.ver_proto, "DM/1.2");
    assert_string_equal(msg.hdr.session_id, "1");
    assert_string_equal(msg.hdr.msg_id, "1");
    assert_string_equal(msg.hdr.target, "1E08C6E95D8BB843B1278FF45BC60CC6");
    assert_string_equal(msg.hdr.source, "https://mdmwindows.com/ManagementServer/MDM.svc");
    assert_int_equal(n_cmds(&msg), 6);
    assert_status(cmd_at(&msg, 0), "1", "1", "0", "SyncHdr", "200");
    assert_status(cmd_at(&msg, 1), "2", "1", "2", "Alert", "200");
    assert_status(cmd_at(&msg, 2), "3", "1", "3", "Alert", "200");
    assert_status(cmd_at(&msg, 3), "4", "1", "4", "Replace", "200");
    for (size_t i = 4; i < 6; i++) {
        const syncml_cmd_t *c = cmd_at(&msg, i);
        assert_int_equal(c->type, SYNCML_CMD_REPLACE);
        assert_int_equal(c->decode_status, 0);
        assert_string_equal(c->cmd_id, i == 4 ? "5" : "6");
        assert_int_equal(c->n_items, 1);
        const syncml_item_t *it = c->items;
        const char *uri = i == 4 ? "./Vendor/MSFT/Personalization/DesktopImageUrl"
                                 : "./Vendor/MSFT/Personalization/LockScreenImageUrl";
        assert_string_equal(it->target, uri);
        assert_true(it->has_meta);
        assert_string_equal(it->meta.format, "chr");
        assert_string_equal(it->meta.type, "text/plain");
        assert_true(it->has_data);
        assert_true(it->data_opaque); /* libwbxml writes Replace Data as OPAQUE */
        assert_bytes(it->data, it->data_len, desktop_url, strlen(desktop_url));
    }
    assert_true(msg.final);
    syncml_msg_free(&msg);
}

static void test_decode_pkg2_strtbl(void **state)
{
    check_pkg2(*state, pkg2_v13, sizeof pkg2_v13);
}

static void test_decode_pkg2_nostrtbl(void **state)
{
    check_pkg2(*state, pkg2_v12, sizeof pkg2_v12);
}

static void test_decode_pkg3(void **state)
{
    syncml_msg_t msg;
    assert_int_equal(decode(*state, pkg3_v12, sizeof pkg3_v12, &msg, NULL), OMADM_OK);
    assert_string_equal(msg.hdr.session_id, "1");
    assert_string_equal(msg.hdr.msg_id, "2");
    assert_string_equal(msg.hdr.target, "https://mdmwindows.com/ManagementServer/MDM.svc");
    assert_string_equal(msg.hdr.source, "1E08C6E95D8BB843B1278FF45BC60CC6");
    assert_int_equal(n_cmds(&msg), 3);
    assert_status(cmd_at(&msg, 0), "1", "1", "0", "SyncHdr", "200");
    assert_status(cmd_at(&msg, 1), "2", "1", "5", "Replace", "202");
    assert_status(cmd_at(&msg, 2), "3", "1", "6", "Replace", "202");
    assert_true(msg.final);
    syncml_msg_free(&msg);
}

static void test_decode_server_commands(void **state)
{
    syncml_msg_t msg;
    assert_int_equal(decode(*state, srv_v12, sizeof srv_v12, &msg, NULL), OMADM_OK);
    const syncml_hdr_t *h = &msg.hdr;
    assert_string_equal(h->session_id, "4A1");
    assert_string_equal(h->msg_id, "2");
    assert_string_equal(h->target, "IMEI:493005100592800");
    assert_string_equal(h->source, "https://dm.example.com/dm");
    assert_string_equal(h->source_name, "srv");
    assert_non_null(h->cred);
    assert_string_equal(h->cred->meta.format, "b64");
    assert_string_equal(h->cred->meta.type, "syncml:auth-md5");
    assert_bytes(h->cred->data, h->cred->data_len, "Zm9vYmFy", 8);
    assert_true(h->has_meta);
    assert_int_equal(h->meta.max_msg_size, 10000);
    assert_int_equal(n_cmds(&msg), 5);

    const syncml_cmd_t *st = cmd_at(&msg, 0);
    assert_status(st, "1", "1", "0", "SyncHdr", "212");
    assert_non_null(st->target_refs);
    assert_string_equal(st->target_refs->s, "https://dm.example.com/dm");
    assert_non_null(st->source_refs);
    assert_string_equal(st->source_refs->s, "IMEI:493005100592800");
    assert_non_null(st->chal);
    assert_string_equal(st->chal->meta.format, "b64");
    assert_string_equal(st->chal->meta.type, "syncml:auth-md5");
    assert_string_equal(st->chal->meta.next_nonce, "ZG9vZGxl");

    const syncml_cmd_t *get = cmd_at(&msg, 1);
    assert_int_equal(get->type, SYNCML_CMD_GET);
    assert_int_equal(get->n_items, 2);
    assert_string_equal(get->items->target, "./DevInfo/DevId");
    assert_false(get->items->has_data);
    assert_string_equal(get->items->next->target, "./DevDetail/SwV");

    const syncml_cmd_t *add = cmd_at(&msg, 2);
    assert_int_equal(add->type, SYNCML_CMD_ADD);
    assert_true(add->has_meta);
    assert_string_equal(add->meta.format, "int");
    assert_string_equal(add->items->target, "./Vendor/X/Count");
    assert_bytes(add->items->data, add->items->data_len, "42", 2);

    const syncml_cmd_t *exec = cmd_at(&msg, 3);
    assert_int_equal(exec->type, SYNCML_CMD_EXEC);
    assert_string_equal(exec->correlator, "abc");
    assert_string_equal(exec->items->target, "./Vendor/X/Reboot");

    const syncml_cmd_t *atomic = cmd_at(&msg, 4);
    assert_int_equal(atomic->type, SYNCML_CMD_ATOMIC);
    assert_non_null(atomic->children);
    assert_int_equal(atomic->children->type, SYNCML_CMD_DELETE);
    assert_string_equal(atomic->children->cmd_id, "6");
    assert_string_equal(atomic->children->items->target, "./Vendor/X/Old");
    assert_true(msg.final);
    syncml_msg_free(&msg);
}

/* libwbxml's converter (XML -> WBXML at run time, with and without string
 * table) agrees with our decoder. */
static void test_decode_libwbxml_runtime(void **state)
{
    static const char xml[] =
        "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
        "<VerProto>DM/1.2</VerProto><SessionID>9</SessionID><MsgID>1</MsgID>"
        "<Target><LocURI>dev</LocURI></Target><Source><LocURI>srv</LocURI></Source>"
        "</SyncHdr><SyncBody><Replace><CmdID>2</CmdID><Item><Target><LocURI>./a/b</LocURI>"
        "</Target><Meta><Format xmlns=\"syncml:metinf\">chr</Format></Meta>"
        "<Data>value one</Data></Item></Replace><Get><CmdID>3</CmdID><Item><Target>"
        "<LocURI>./a/b</LocURI></Target></Item></Get><Final/></SyncBody></SyncML>";
    for (int strtbl = 0; strtbl < 2; strtbl++) {
        WBXMLConvXML2WBXML *conv = NULL;
        WB_UTINY *wbxml = NULL;
        WB_ULONG wbxml_len = 0;
        assert_int_equal(wbxml_conv_xml2wbxml_create(&conv), WBXML_OK);
        wbxml_conv_xml2wbxml_set_version(conv, strtbl ? WBXML_VERSION_13 : WBXML_VERSION_12);
        if (!strtbl)
            wbxml_conv_xml2wbxml_disable_string_table(conv);
        assert_int_equal(wbxml_conv_xml2wbxml_run(conv, (WB_UTINY *)xml, sizeof xml - 1, &wbxml,
                                                  &wbxml_len),
                         WBXML_OK);
        wbxml_conv_xml2wbxml_destroy(conv);

        syncml_msg_t msg;
        assert_int_equal(decode(*state, wbxml, wbxml_len, &msg, NULL), OMADM_OK);
        free(wbxml);
        assert_string_equal(msg.hdr.session_id, "9");
        assert_int_equal(n_cmds(&msg), 2);
        const syncml_item_t *it = cmd_at(&msg, 0)->items;
        assert_string_equal(it->target, "./a/b");
        assert_string_equal(it->meta.format, "chr");
        assert_bytes(it->data, it->data_len, "value one", 9);
        assert_int_equal(cmd_at(&msg, 1)->type, SYNCML_CMD_GET);
        syncml_msg_free(&msg);
    }
}

/* ---- byte-exact values ---------------------------------------------------- */

static const syncml_item_t *first_item(const syncml_msg_t *msg)
{
    assert_non_null(msg->cmds);
    assert_non_null(msg->cmds->items);
    return msg->cmds->items;
}

static void test_opaque_binary_exact(void **state)
{
    static const uint8_t bin[] = {0x00, 0xFF, '\n', 0x01, 0x80, 0xC3, 0x00, '\r', 0xFE};
    wb_t w;
    wb_init(&w, 512);
    std_header(&w);
    open_body(&w, "1.2");
    open_replace_data(&w);
    opaque(&w, bin, sizeof bin);
    close_replace_data(&w);
    close_body(&w);

    syncml_msg_t msg;
    assert_int_equal(decode(*state, w.b, w.n, &msg, NULL), OMADM_OK);
    const syncml_item_t *it = first_item(&msg);
    assert_true(it->has_data);
    assert_true(it->data_opaque);
    assert_bytes(it->data, it->data_len, bin, sizeof bin);
    syncml_msg_free(&msg);
    free(w.b);
}

static void test_bare_newline_survives(void **state)
{
    static const char *const values[] = {"\n", "\r\n", "  x \n", "a\nb\n"};
    for (int as_opaque = 0; as_opaque < 2; as_opaque++) {
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            wb_t w;
            wb_init(&w, 512);
            std_header(&w);
            open_body(&w, "1.2");
            open_replace_data(&w);
            if (as_opaque)
                opaque(&w, values[i], strlen(values[i]));
            else
                str_i(&w, values[i]);
            close_replace_data(&w);
            close_body(&w);

            syncml_msg_t msg;
            assert_int_equal(decode(*state, w.b, w.n, &msg, NULL), OMADM_OK);
            const syncml_item_t *it = first_item(&msg);
            assert_bytes(it->data, it->data_len, values[i], strlen(values[i]));
            assert_int_equal(it->data_opaque, as_opaque);
            syncml_msg_free(&msg);
            free(w.b);
        }
    }
}

/* STR_I, OPAQUE, STR_T and ENTITY pieces of one value are concatenated. */
static void test_text_pieces_and_entities(void **state)
{
    static const uint8_t strtbl[] = "-//SYNCML//DTD SyncML 1.2//EN\0tbl\0";
    wb_t w;
    wb_init(&w, 512);
    byte(&w, 0x03);          /* WBXML 1.3 */
    byte(&w, 0x00);          /* public id in the string table ... */
    mb(&w, 0);               /* ... at index 0 */
    byte(&w, 0x6A);
    mb(&w, sizeof strtbl - 1);
    put(&w, strtbl, sizeof strtbl - 1);
    open_body(&w, "1.2");
    open_tag(&w, T_REPLACE);
    leaf(&w, T_CMDID, "1");
    open_tag(&w, T_ITEM);
    open_tag(&w, T_TARGET);
    open_tag(&w, T_LOCURI);
    str_i(&w, "./caf");
    byte(&w, 0x02);          /* ENTITY U+00E9 */
    mb(&w, 0xE9);
    byte(&w, 0x02);          /* ENTITY U+20AC */
    mb(&w, 0x20AC);
    end(&w);
    end(&w);
    open_tag(&w, T_DATA);
    str_i(&w, "ab");
    opaque(&w, "\0c", 2);
    byte(&w, 0x83);          /* STR_T "tbl" */
    mb(&w, 30);
    byte(&w, 0x02);          /* ENTITY U+1F600 */
    mb(&w, 0x1F600);
    close_replace_data(&w);
    close_body(&w);

    syncml_msg_t msg;
    assert_int_equal(decode(*state, w.b, w.n, &msg, NULL), OMADM_OK);
    const syncml_item_t *it = first_item(&msg);
    assert_string_equal(it->target, "./caf\xC3\xA9\xE2\x82\xAC");
    assert_bytes(it->data, it->data_len, "ab\0ctbl\xF0\x9F\x98\x80", 11);
    assert_true(it->data_opaque);
    syncml_msg_free(&msg);
    free(w.b);
}

/* ---- header checks -------------------------------------------------------- */

static omadm_error_t decode_with_header(omadm_t *dm, const uint8_t *hdr, size_t hdr_len,
                                        const char *verdtd, const char **detail)
{
    wb_t w;
    syncml_msg_t msg;
    wb_init(&w, 512);
    put(&w, hdr, hdr_len);
    open_body(&w, verdtd);
    close_body(&w);
    omadm_error_t rc = decode(dm, w.b, w.n, &msg, detail);
    syncml_msg_free(&msg);
    free(w.b);
    return rc;
}

static void test_public_ids(void **state)
{
    static const uint8_t v12[] = {0x02, 0xA4, 0x01, 0x6A, 0x00};
    static const uint8_t v11_syncml11[] = {0x01, 0x9F, 0x53, 0x6A, 0x00};
    static const uint8_t charset_unknown[] = {0x03, 0xA4, 0x01, 0x00, 0x00};
    /* public id 0 + index 0 into a 30-byte string table holding the FPI */
    static const uint8_t fpi_12[] = "\x03\x00\x00\x6A\x1E-//SYNCML//DTD SyncML 1.2//EN";
    const char *detail = NULL;
    assert_int_equal(decode_with_header(*state, v12, sizeof v12, "1.2", NULL), OMADM_OK);
    assert_int_equal(decode_with_header(*state, v11_syncml11, sizeof v11_syncml11, "1.1", NULL),
                     OMADM_OK);
    assert_int_equal(decode_with_header(*state, charset_unknown, sizeof charset_unknown, "1.2",
                                        NULL),
                     OMADM_OK);
    assert_int_equal(decode_with_header(*state, fpi_12, sizeof fpi_12, "1.2", NULL), OMADM_OK);

    static const struct {
        uint8_t b[40];
        size_t n;
    } bad[] = {
        {{0x02, 0xA4, 0x02, 0x6A, 0x00}, 5},       /* MetInf 1.2 */
        {{0x02, 0xA4, 0x03, 0x6A, 0x00}, 5},       /* DevInf 1.2 */
        {{0x02, 0x01, 0x6A, 0x00}, 4},             /* unknown public id */
        {{0x02, 0x9F, 0x54, 0x6A, 0x00}, 5},       /* MetInf 1.1 */
        {{0x02, 0x04, 0x6A, 0x00}, 4},             /* WML 1.3 */
        {{0x00, 0xA4, 0x01, 0x00}, 4},             /* WBXML 1.0 */
        {{0x04, 0xA4, 0x01, 0x6A, 0x00}, 5},       /* WBXML 1.4 */
        {{0x02, 0xA4, 0x01, 0x87, 0x77, 0x00}, 6}, /* UTF-16 */
        {{0x03, 0x00, 0x00, 0x6A, 0x05, 'a', 'b', 'c', 'd', 0}, 10}, /* unknown FPI */
        {{0x03, 0x00, 0x09, 0x6A, 0x02, 'a', 0}, 7},                  /* FPI index out of range */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        detail = NULL;
        assert_int_equal(decode_with_header(*state, bad[i].b, bad[i].n, "1.2", &detail),
                         OMADM_E_NOT_SYNCML);
        assert_non_null(detail);
        assert_true(strncmp(detail, "WBXML: ", 7) == 0);
    }
}

/* ---- limits and malformed input ------------------------------------------- */

static omadm_error_t decode_nested(omadm_t *dm, size_t levels)
{
    wb_t w;
    syncml_msg_t msg;
    wb_init(&w, 256 + 2 * levels);
    std_header(&w);
    open_body(&w, "1.2");
    for (size_t i = 0; i < levels; i++)
        open_tag(&w, T_META);
    for (size_t i = 0; i < levels; i++)
        end(&w);
    close_body(&w);
    omadm_error_t rc = decode(dm, w.b, w.n, &msg, NULL);
    syncml_msg_free(&msg);
    free(w.b);
    return rc;
}

static void test_depth_limit(void **state)
{
    /* SyncML is depth 1, SyncBody 2: 30 more levels reach the default 32. */
    assert_int_equal(decode_nested(*state, 30), OMADM_OK);
    assert_int_equal(decode_nested(*state, 31), OMADM_E_TOO_LARGE);
    assert_int_equal(decode_nested(*state, 200000), OMADM_E_TOO_LARGE);

    omadm_t *dm = new_dm(0, 8);
    assert_int_equal(decode_nested(dm, 6), OMADM_OK);
    assert_int_equal(decode_nested(dm, 7), OMADM_E_TOO_LARGE);
    /* the standard samples need depth 6 (SyncML/SyncBody/Replace/Item/Target/LocURI) */
    syncml_msg_t msg;
    assert_int_equal(decode(dm, pkg2_v13, sizeof pkg2_v13, &msg, NULL), OMADM_OK);
    syncml_msg_free(&msg);
    omadm_free(dm);
}

static void test_size_limit(void **state)
{
    (void)state;
    omadm_t *dm = new_dm(sizeof pkg2_v12 - 1, 0);
    syncml_msg_t msg;
    const char *detail = NULL;
    assert_int_equal(decode(dm, pkg2_v12, sizeof pkg2_v12, &msg, &detail), OMADM_E_TOO_LARGE);
    assert_non_null(detail);
    syncml_msg_free(&msg);
    omadm_free(dm);

    dm = new_dm(sizeof pkg2_v12, 0);
    assert_int_equal(decode(dm, pkg2_v12, sizeof pkg2_v12, &msg, NULL), OMADM_OK);
    syncml_msg_free(&msg);
    omadm_free(dm);
}

static void check_all_prefixes(omadm_t *dm, const uint8_t *in, size_t len)
{
    for (size_t n = 0; n < len; n++) {
        syncml_msg_t msg;
        const char *detail = NULL;
        omadm_error_t rc = decode(dm, in, n, &msg, &detail);
        assert_int_not_equal(rc, OMADM_OK);
        assert_non_null(detail);
        syncml_msg_free(&msg);
    }
}

static void test_truncated(void **state)
{
    check_all_prefixes(*state, pkg2_v13, sizeof pkg2_v13);
    check_all_prefixes(*state, pkg2_v12, sizeof pkg2_v12);
    check_all_prefixes(*state, pkg3_v12, sizeof pkg3_v12);
    check_all_prefixes(*state, srv_v12, sizeof srv_v12);
}

/* A message whose string table is tbl (n bytes; the public id by index 0
 * when pubid_in_table), with a Replace whose Data is STR_T idx. */
static omadm_error_t decode_str_t(omadm_t *dm, const uint8_t *tbl, size_t n, bool pubid_in_table,
                                  uint32_t idx, syncml_msg_t *msg, const char **detail)
{
    wb_t w;
    wb_init(&w, 512);
    byte(&w, 0x03);
    if (pubid_in_table) {
        byte(&w, 0x00);
        mb(&w, 0);
    } else {
        byte(&w, 0xA4);
        byte(&w, 0x01);
    }
    byte(&w, 0x6A);
    mb(&w, (uint32_t)n);
    put(&w, tbl, n);
    open_body(&w, "1.2");
    open_replace_data(&w);
    byte(&w, 0x83); /* STR_T */
    mb(&w, idx);
    close_replace_data(&w);
    close_body(&w);
    omadm_error_t rc = decode(dm, w.b, w.n, msg, detail);
    free(w.b);
    return rc;
}

/* Every string of the table ends with its NUL: a reference to an entry
 * that runs to the end of the table without one is refused, whether it
 * names the public id, a value or a literal tag. */
static void test_strtbl_entry_without_nul(void **state)
{
    static const uint8_t good[] = "-//SYNCML//DTD SyncML 1.2//EN\0tbl\0";
    static const uint8_t bad[] = "-//SYNCML//DTD SyncML 1.2//EN\0tbl"; /* no NUL after tbl */
    static const uint8_t bad_pubid[] = "-//SYNCML//DTD SyncML 1.2//EN";
    syncml_msg_t msg;
    const char *detail = NULL;
    assert_int_equal(decode_str_t(*state, good, sizeof good - 1, true, 30, &msg, &detail), OMADM_OK);
    assert_bytes(first_item(&msg)->data, first_item(&msg)->data_len, "tbl", 3);
    syncml_msg_free(&msg);

    assert_int_equal(decode_str_t(*state, bad, sizeof bad - 1, true, 30, &msg, &detail),
                     OMADM_E_NOT_SYNCML);
    assert_string_equal(detail, "WBXML: string table entry without its terminating NUL");
    syncml_msg_free(&msg);
    /* the middle of that entry: the same */
    detail = NULL;
    assert_int_equal(decode_str_t(*state, bad, sizeof bad - 1, true, 31, &msg, &detail),
                     OMADM_E_NOT_SYNCML);
    assert_string_equal(detail, "WBXML: string table entry without its terminating NUL");
    syncml_msg_free(&msg);
    /* the public id itself without its NUL */
    detail = NULL;
    assert_int_equal(decode_str_t(*state, bad_pubid, sizeof bad_pubid - 1, true, 0, &msg, &detail),
                     OMADM_E_NOT_SYNCML);
    assert_string_equal(detail, "WBXML: string table entry without its terminating NUL");
    syncml_msg_free(&msg);
    /* a table of one unterminated byte behind a token public id */
    detail = NULL;
    assert_int_equal(decode_str_t(*state, (const uint8_t *)"x", 1, false, 0, &msg, &detail),
                     OMADM_E_NOT_SYNCML);
    assert_string_equal(detail, "WBXML: string table entry without its terminating NUL");
    syncml_msg_free(&msg);
    /* a LITERAL tag name from such an entry */
    static const uint8_t lit[] = {0x03, 0xA4, 0x01, 0x6A, 0x03, 'F', 'o', 'o', 0x44, 0x00, 0x01};
    detail = NULL;
    assert_int_equal(decode(*state, lit, sizeof lit, &msg, &detail), OMADM_E_NOT_SYNCML);
    assert_string_equal(detail, "WBXML: string table entry without its terminating NUL");
    syncml_msg_free(&msg);
}

static void test_malformed(void **state)
{
    static const struct {
        uint8_t b[24];
        size_t n;
    } bad[] = {
        {{0x02, 0xA4, 0x01, 0x6A, 0x00}, 5},                            /* no body */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x01}, 6},                      /* END as root */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x03, 'x', 0}, 8},              /* text as root */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0xC3, 0x05, 'a', 0x01}, 10}, /* opaque overruns */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0xC3, 0x8F, 0xFF, 0xFF, 0xFF, 0x7F, 0x01}, 13},
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0xC3, 0x90, 0x80, 0x80, 0x80, 0x00, 0x01}, 13},
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0xC3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 13},
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0x03, 'a', 'b'}, 9},     /* unterminated STR_I */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0x83, 0x00, 0x01}, 9},   /* STR_T, no table */
        {{0x02, 0xA4, 0x01, 0x6A, 0x02, 'a', 0, 0x6D, 0x83, 0x05, 0x01}, 11}, /* STR_T range */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0x02, 0x00, 0x01}, 9},   /* ENTITY 0 */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0x02, 0x83, 0xB0, 0x00, 0x01}, 11}, /* surrogate */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0xC0, 0x01}, 8},         /* EXT_0 */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0x40, 'x', 0, 0x01}, 10}, /* EXT_I_0 */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x44, 0x00, 0x01}, 8},         /* LITERAL_C, no table */
        {{0x02, 0xA4, 0x01, 0x6A, 0x01, 0x00, 0x44, 0x00, 0x01}, 9},   /* empty literal name */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x2D, 0x2D}, 7},               /* second root */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x2D, 0x00}, 7},               /* trailing bytes */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0x00}, 7},               /* SWITCH_PAGE cut */
        {{0x02, 0xA4, 0x01, 0x6A, 0x00, 0xAD, 0x05}, 7},               /* attrs not ended */
        {{0x02, 0xA4, 0x01, 0x6A, 0x05, 'a', 'b'}, 7},                 /* short string table */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        syncml_msg_t msg;
        const char *detail = NULL;
        omadm_error_t rc = decode(*state, bad[i].b, bad[i].n, &msg, &detail);
        if (rc != OMADM_E_NOT_SYNCML)
            print_error("case %zu: rc %d (%s)\n", i, rc, detail ? detail : "-");
        assert_int_equal(rc, OMADM_E_NOT_SYNCML);
        assert_non_null(detail);
        syncml_msg_free(&msg);
    }
    /* trailing garbage after a complete message */
    wb_t w;
    wb_init(&w, sizeof pkg3_v12 + 1);
    put(&w, pkg3_v12, sizeof pkg3_v12);
    byte(&w, 0x01);
    syncml_msg_t msg;
    assert_int_equal(decode(*state, w.b, w.n, &msg, NULL), OMADM_E_NOT_SYNCML);
    syncml_msg_free(&msg);
    free(w.b);
    assert_int_equal(codec_wbxml_decode(*state, NULL, 1, &msg, NULL), OMADM_E_INVALID_ARG);
}

/* Processing instructions and attribute lists are skipped; LITERAL and
 * unknown tokens become elements the builder treats as unknown. */
static void test_pi_attrs_literals(void **state)
{
    static const uint8_t strtbl[] = "Foo\0";
    wb_t w;
    wb_init(&w, 512);
    byte(&w, 0x03);
    byte(&w, 0xA4);
    byte(&w, 0x01);
    byte(&w, 0x6A);
    mb(&w, sizeof strtbl - 1);
    put(&w, strtbl, sizeof strtbl - 1);
    static const uint8_t pi[] = {0x43, 0x05, 0x03, 'v', 0, 0x01};
    put(&w, pi, sizeof pi); /* PI before the root */
    open_body(&w, "1.2");
    /* <Foo> (literal) with a CmdID */
    byte(&w, 0x44);
    mb(&w, 0);
    leaf(&w, T_CMDID, "11");
    end(&w);
    /* unassigned token 0x30 on page 0 */
    byte(&w, 0x30 | 0x40);
    leaf(&w, T_CMDID, "12");
    end(&w);
    /* an element on code page 5 */
    page(&w, 5);
    byte(&w, 0x05);
    page(&w, 0);
    /* a Status whose Cmd has an attribute list and content */
    open_tag(&w, T_STATUS);
    leaf(&w, T_CMDID, "13");
    leaf(&w, T_MSGREF, "1");
    leaf(&w, T_CMDREF, "0");
    static const uint8_t cmd_with_attrs[] = {0x0A | 0xC0, 0x05, 0x85, 0x03, 'z', 0, 0xC3, 0x01,
                                             0xFF, 0x01, 0x03, 'S', 'y', 'n', 'c', 'H', 'd',
                                             'r', 0, 0x01};
    put(&w, cmd_with_attrs, sizeof cmd_with_attrs);
    leaf(&w, T_DATA, "200");
    end(&w);
    close_body(&w);
    put(&w, pi, sizeof pi); /* PI after the root */

    syncml_msg_t msg;
    const char *detail = NULL;
    assert_int_equal(decode(*state, w.b, w.n, &msg, &detail), OMADM_OK);
    assert_int_equal(n_cmds(&msg), 4);
    assert_int_equal(cmd_at(&msg, 0)->type, SYNCML_CMD_UNKNOWN);
    assert_string_equal(cmd_at(&msg, 0)->name, "Foo");
    assert_string_equal(cmd_at(&msg, 0)->cmd_id, "11");
    assert_int_not_equal(cmd_at(&msg, 0)->decode_status, 0);
    assert_int_equal(cmd_at(&msg, 1)->type, SYNCML_CMD_UNKNOWN);
    assert_string_equal(cmd_at(&msg, 1)->cmd_id, "12");
    assert_int_not_equal(cmd_at(&msg, 1)->decode_status, 0);
    assert_int_equal(cmd_at(&msg, 2)->type, SYNCML_CMD_UNKNOWN);
    assert_status(cmd_at(&msg, 3), "13", "1", "0", "SyncHdr", "200");
    assert_true(msg.final);
    syncml_msg_free(&msg);
    free(w.b);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void decode_and_free(omadm_t *dm, const uint8_t *in, size_t len)
{
    syncml_msg_t msg;
    const char *detail = NULL;
    omadm_error_t rc = decode(dm, in, len, &msg, &detail);
    assert_true(rc == OMADM_OK || rc == OMADM_E_NOT_SYNCML || rc == OMADM_E_TOO_LARGE ||
                rc == OMADM_E_MALFORMED);
    if (rc != OMADM_OK)
        assert_non_null(detail);
    syncml_msg_free(&msg);
}

static void test_garbage(void **state)
{
    static const struct {
        const uint8_t *p;
        size_t n;
    } seeds[] = {{pkg2_v13, sizeof pkg2_v13},
                 {pkg2_v12, sizeof pkg2_v12},
                 {pkg3_v12, sizeof pkg3_v12},
                 {srv_v12, sizeof srv_v12}};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    uint8_t buf[1024];
    for (int i = 0; i < 20000; i++) {
        size_t n;
        uint64_t r = rng_next(&rng);
        if (i % 4 == 0) { /* pure noise, sometimes behind a valid header */
            n = (size_t)(r % 300);
            for (size_t k = 0; k < n; k++)
                buf[k] = (uint8_t)rng_next(&rng);
            if (n >= 5 && (r & 0x100))
                memcpy(buf, "\x02\xA4\x01\x6A\x00", 5);
        } else { /* a sample with a few bytes changed, cut or inserted */
            size_t s = (size_t)(r % 4);
            n = seeds[s].n;
            memcpy(buf, seeds[s].p, n);
            int edits = 1 + (int)((r >> 8) % 4);
            for (int e = 0; e < edits && n > 1; e++) {
                uint64_t q = rng_next(&rng);
                size_t at = (size_t)(q % n);
                if ((q >> 32) % 3 == 0)
                    buf[at] = (uint8_t)(q >> 40);
                else if ((q >> 32) % 3 == 1) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                } else if (n < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t)(q >> 48);
                    n++;
                }
            }
        }
        decode_and_free(*state, buf, n);
    }
}

/* Allocation failures at every point: NOMEM or success, never a leak. */
typedef struct failing_alloc {
    long budget; /* allocations left; < 0: unlimited */
} failing_alloc_t;

static void *fa_alloc(void *ctx, size_t n)
{
    failing_alloc_t *fa = ctx;
    if (fa->budget == 0)
        return NULL;
    if (fa->budget > 0)
        fa->budget--;
    return malloc(n ? n : 1);
}

static void *fa_realloc(void *ctx, void *p, size_t n)
{
    failing_alloc_t *fa = ctx;
    if (fa->budget == 0)
        return NULL;
    if (fa->budget > 0)
        fa->budget--;
    return realloc(p, n ? n : 1);
}

static void fa_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    failing_alloc_t fa = {.budget = -1};
    omadm_platform_t plat = {.ctx = &fa, .alloc = fa_alloc, .realloc = fa_realloc, .free = fa_free};
    omadm_config_t cfg;
    omadm_t *dm = NULL;
    omadm_config_init(&cfg);
    assert_int_equal(omadm_new(&cfg, &plat, NULL, &dm), OMADM_OK);
    bool decoded = false, encoded = false;
    for (long budget = 0; budget < 10000 && !(decoded && encoded); budget++) {
        syncml_msg_t msg;
        fa.budget = budget;
        omadm_error_t rc = decode(dm, srv_v12, sizeof srv_v12, &msg, NULL);
        assert_true(rc == OMADM_OK || rc == OMADM_E_NOMEM);
        if (rc == OMADM_OK) {
            decoded = true;
            buf_t out;
            buf_init(&out, dm);
            rc = codec_wbxml_encode(dm, &msg, &out);
            assert_true(rc == OMADM_OK || rc == OMADM_E_NOMEM);
            encoded = rc == OMADM_OK;
            buf_free(&out);
        }
        fa.budget = -1;
        syncml_msg_free(&msg);
    }
    assert_true(decoded && encoded);
    omadm_free(dm);
}

/* ---- encoding ------------------------------------------------------------- */

static const char *dup(syncml_msg_t *m, const char *s)
{
    const char *d = arena_strdup(&m->arena, s);
    assert_non_null(d);
    return d;
}

static void set_hdr(syncml_msg_t *m)
{
    m->hdr.ver_dtd = "1.2";
    m->hdr.ver_proto = "DM/1.2";
    m->hdr.session_id = "1F";
    m->hdr.msg_id = "4";
    m->hdr.target = "https://dm.example.com/dm";
    m->hdr.source = "IMEI:001";
    m->hdr.source_name = "dev one";
    m->hdr.has_meta = true;
    m->hdr.meta.max_msg_size = 65536;
    m->hdr.meta.max_obj_size = 1048576;
}

static const uint8_t bin_value[] = {0x00, 0xFF, 0x0A, 0x00, 0xC3, 0x01, 0x80, 0x7F};
static const char text_value[] = "  two\nlines \r\n\t";
static const uint8_t bad_utf8[] = {'a', 0xC0, 0xAF, 'b'}; /* overlong '/' */

/* Status (header, with Chal), Results with three items, Status for a Get,
 * an Alert; every kind of value. */
static void build_reply(syncml_msg_t *m, bool with_binary)
{
    set_hdr(m);
    syncml_cmd_t *st = syncml_cmd_new(m, SYNCML_CMD_STATUS);
    assert_non_null(st);
    st->cmd_id = "1";
    st->msg_ref = "2";
    st->cmd_ref = "0";
    st->cmd = "SyncHdr";
    assert_int_equal(syncml_strlist_add(m, &st->target_refs, "IMEI:001"), 0);
    assert_int_equal(syncml_strlist_add(m, &st->source_refs, "https://dm.example.com/dm"), 0);
    st->chal = arena_alloc(&m->arena, sizeof *st->chal);
    assert_non_null(st->chal);
    syncml_meta_init(&st->chal->meta);
    st->chal->meta.format = "b64";
    st->chal->meta.type = "syncml:auth-md5";
    st->chal->meta.next_nonce = "bm9uY2U=";
    st->data = (const uint8_t *)"401";
    st->data_len = 3;
    st->has_data = true;
    syncml_cmd_append(&m->cmds, &m->cmds_tail, st);

    syncml_cmd_t *res = syncml_cmd_new(m, SYNCML_CMD_RESULTS);
    assert_non_null(res);
    res->cmd_id = "2";
    res->msg_ref = "2";
    res->cmd_ref = "5";
    syncml_item_t *it = syncml_item_add(m, res);
    assert_non_null(it);
    it->source = dup(m, "./DevInfo/DevId");
    it->has_meta = true;
    it->meta.format = "chr";
    it->meta.type = "text/plain";
    it->data = (const uint8_t *)text_value;
    it->data_len = strlen(text_value);
    it->has_data = true;
    it = syncml_item_add(m, res);
    assert_non_null(it);
    it->source = "./Vendor/X/Empty";
    it->has_meta = true;
    it->meta.format = "chr";
    it->data = (const uint8_t *)"";
    it->data_len = 0;
    it->has_data = true;
    if (with_binary) {
        it = syncml_item_add(m, res);
        assert_non_null(it);
        it->source = "./Vendor/X/Blob";
        it->has_meta = true;
        it->meta.format = "bin";
        it->meta.type = "application/octet-stream";
        it->meta.size = (int64_t)sizeof bin_value;
        it->data = bin_value;
        it->data_len = sizeof bin_value;
        it->has_data = true;
        it = syncml_item_add(m, res);
        assert_non_null(it);
        it->source = "./Vendor/X/Latin1";
        it->data = bad_utf8;
        it->data_len = sizeof bad_utf8;
        it->has_data = true;
    }
    syncml_cmd_append(&m->cmds, &m->cmds_tail, res);

    syncml_cmd_t *st2 = syncml_cmd_new(m, SYNCML_CMD_STATUS);
    assert_non_null(st2);
    st2->cmd_id = "3";
    st2->msg_ref = "2";
    st2->cmd_ref = "5";
    st2->cmd = "Get";
    assert_int_equal(syncml_strlist_add(m, &st2->target_refs, "./DevInfo/DevId"), 0);
    st2->data = (const uint8_t *)"200";
    st2->data_len = 3;
    st2->has_data = true;
    syncml_cmd_append(&m->cmds, &m->cmds_tail, st2);

    syncml_cmd_t *al = syncml_cmd_new(m, SYNCML_CMD_ALERT);
    assert_non_null(al);
    al->cmd_id = "4";
    al->data = (const uint8_t *)"1201";
    al->data_len = 4;
    al->has_data = true;
    syncml_cmd_append(&m->cmds, &m->cmds_tail, al);
    m->final = true;
}

static void encode_ok(omadm_t *dm, const syncml_msg_t *m, buf_t *out)
{
    buf_init(out, dm);
    assert_int_equal(codec_wbxml_encode(dm, m, out), OMADM_OK);
    assert_true(out->len > 5);
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (!memcmp(hay + i, needle, k))
            return true;
    return false;
}

static void test_encode_bytes(void **state)
{
    omadm_t *dm = *state;
    syncml_msg_t m;
    buf_t out;
    syncml_msg_init(&m, dm);
    m.enc = SYNCML_ENC_WBXML;
    build_reply(&m, true);
    encode_ok(dm, &m, &out);
    /* header, then <SyncML><SyncHdr><VerDTD> "1.2" */
    static const uint8_t start[] = {0x02, 0xA4, 0x01, 0x6A, 0x00, 0x6D, 0x6C, 0x71,
                                    0x03, '1', '.', '2', 0x00, 0x01};
    assert_memory_equal(out.data, start, sizeof start);
    /* ... <Final/></SyncBody></SyncML>: Final without the content bit */
    static const uint8_t tail[] = {0x12, 0x01, 0x01};
    assert_memory_equal(out.data + out.len - 3, tail, 3);
    /* Meta children go to code page 1 and back: <Meta> SWITCH 1 <MaxMsgSize> */
    static const uint8_t meta[] = {0x5A, 0x00, 0x01, 0x4C, 0x03, '6', '5', '5', '3', '6', 0x00,
                                   0x01};
    assert_true(contains(out.data, out.len, meta, sizeof meta));
    /* </Meta></SyncHdr> SWITCH 0 <SyncBody> */
    static const uint8_t back[] = {0x01, 0x01, 0x00, 0x00, 0x6B};
    assert_true(contains(out.data, out.len, back, sizeof back));
    /* the bin value as OPAQUE, the text value as STR_I, bytes as given */
    uint8_t op[2 + sizeof bin_value] = {0xC3, (uint8_t)sizeof bin_value};
    memcpy(op + 2, bin_value, sizeof bin_value);
    assert_true(contains(out.data, out.len, op, sizeof op));
    static const uint8_t bad[] = {0xC3, 0x04, 'a', 0xC0, 0xAF, 'b'};
    assert_true(contains(out.data, out.len, bad, sizeof bad));
    assert_true(contains(out.data, out.len, "\x03  two\nlines \r\n\t\x00", 17));
    /* the empty Data and the empty-valued item: <Data/> is a bare 0x0F */
    /* </Meta> SWITCH 0 <Data/> </Item> */
    static const uint8_t empty_data[] = {0x01, 0x00, 0x00, 0x0F, 0x01};
    assert_true(contains(out.data, out.len, empty_data, sizeof empty_data));
    buf_free(&out);
    syncml_msg_free(&m);
}

static void assert_same_meta(const syncml_meta_t *a, const syncml_meta_t *b)
{
    if (b->format)
        assert_string_equal(a->format, b->format);
    else
        assert_null(a->format);
    if (b->type)
        assert_string_equal(a->type, b->type);
    else
        assert_null(a->type);
    if (b->next_nonce)
        assert_string_equal(a->next_nonce, b->next_nonce);
    else
        assert_null(a->next_nonce);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->max_msg_size, b->max_msg_size);
    assert_int_equal(a->max_obj_size, b->max_obj_size);
}

static void test_roundtrip(void **state)
{
    omadm_t *dm = *state;
    syncml_msg_t m, back;
    buf_t out;
    syncml_msg_init(&m, dm);
    m.enc = SYNCML_ENC_WBXML;
    build_reply(&m, true);
    encode_ok(dm, &m, &out);
    assert_int_equal(decode(dm, out.data, out.len, &back, NULL), OMADM_OK);

    assert_string_equal(back.hdr.ver_dtd, "1.2");
    assert_string_equal(back.hdr.ver_proto, "DM/1.2");
    assert_string_equal(back.hdr.session_id, "1F");
    assert_string_equal(back.hdr.msg_id, "4");
    assert_string_equal(back.hdr.target, "https://dm.example.com/dm");
    assert_string_equal(back.hdr.source, "IMEI:001");
    assert_string_equal(back.hdr.source_name, "dev one");
    assert_true(back.hdr.has_meta);
    assert_same_meta(&back.hdr.meta, &m.hdr.meta);
    assert_int_equal(n_cmds(&back), 4);

    const syncml_cmd_t *st = cmd_at(&back, 0);
    assert_status(st, "1", "2", "0", "SyncHdr", "401");
    assert_string_equal(st->target_refs->s, "IMEI:001");
    assert_string_equal(st->source_refs->s, "https://dm.example.com/dm");
    assert_non_null(st->chal);
    assert_same_meta(&st->chal->meta, &m.cmds->chal->meta);

    const syncml_cmd_t *res = cmd_at(&back, 1);
    assert_int_equal(res->type, SYNCML_CMD_RESULTS);
    assert_string_equal(res->cmd_id, "2");
    assert_string_equal(res->msg_ref, "2");
    assert_string_equal(res->cmd_ref, "5");
    assert_int_equal(res->n_items, 4);
    const syncml_item_t *a = res->items, *b = cmd_at(&m, 1)->items;
    for (; a && b; a = a->next, b = b->next) {
        assert_string_equal(a->source, b->source);
        assert_int_equal(a->has_meta, b->has_meta);
        assert_same_meta(&a->meta, &b->meta);
        assert_true(a->has_data);
        assert_bytes(a->data, a->data_len, b->data, b->data_len);
    }
    assert_null(a);
    assert_null(b);
    assert_false(res->items->data_opaque);             /* text went as STR_I */
    assert_true(res->items->next->next->data_opaque);  /* bin went as OPAQUE */
    assert_true(res->items->next->next->next->data_opaque); /* invalid UTF-8 too */

    const syncml_cmd_t *st2 = cmd_at(&back, 2);
    assert_status(st2, "3", "2", "5", "Get", "200");
    assert_string_equal(st2->target_refs->s, "./DevInfo/DevId");
    const syncml_cmd_t *al = cmd_at(&back, 3);
    assert_int_equal(al->type, SYNCML_CMD_ALERT);
    assert_bytes(al->data, al->data_len, "1201", 4);
    assert_true(back.final);

    /* and encoding the decoded model gives the same bytes again */
    buf_t again;
    back.enc = SYNCML_ENC_WBXML;
    encode_ok(dm, &back, &again);
    assert_bytes(again.data, again.len, out.data, out.len);

    buf_free(&again);
    buf_free(&out);
    syncml_msg_free(&back);
    syncml_msg_free(&m);
}

/* Decoding libwbxml's no-string-table WBXML 1.2 and encoding the model
 * again gives libwbxml's bytes back, token for token. */
static void test_reencode_identical(void **state)
{
    static const struct {
        const uint8_t *p;
        size_t n;
    } samples[] = {{pkg2_v12, sizeof pkg2_v12}, {pkg3_v12, sizeof pkg3_v12},
                   {srv_v12, sizeof srv_v12}};
    omadm_t *dm = *state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        syncml_msg_t msg;
        buf_t out;
        assert_int_equal(decode(dm, samples[i].p, samples[i].n, &msg, NULL), OMADM_OK);
        encode_ok(dm, &msg, &out);
        assert_bytes(out.data, out.len, samples[i].p, samples[i].n);
        buf_free(&out);
        syncml_msg_free(&msg);
    }
}

/* libwbxml reads what we write (text-only model: its XML output would put
 * binary bytes raw into CDATA). */
static void test_encode_readable_by_libwbxml(void **state)
{
    omadm_t *dm = *state;
    syncml_msg_t m;
    buf_t out;
    syncml_msg_init(&m, dm);
    m.enc = SYNCML_ENC_WBXML;
    build_reply(&m, false);
    encode_ok(dm, &m, &out);

    WBXMLConvWBXML2XML *conv = NULL;
    WB_UTINY *xml = NULL;
    WB_ULONG xml_len = 0;
    assert_int_equal(wbxml_conv_wbxml2xml_create(&conv), WBXML_OK);
    wbxml_conv_wbxml2xml_set_gen_type(conv, WBXML_GEN_XML_COMPACT);
    wbxml_conv_wbxml2xml_enable_preserve_whitespaces(conv);
    assert_int_equal(wbxml_conv_wbxml2xml_run(conv, out.data, (WB_ULONG)out.len, &xml, &xml_len),
                     WBXML_OK);
    wbxml_conv_wbxml2xml_destroy(conv);
    const char *x = (const char *)xml;
    static const char *const want[] = {
        "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
        "<VerProto>DM/1.2</VerProto><SessionID>1F</SessionID><MsgID>4</MsgID>",
        "<Source><LocURI>IMEI:001</LocURI><LocName>dev one</LocName></Source>",
        "<MaxMsgSize xmlns=\"syncml:metinf\">65536</MaxMsgSize>",
        "<MaxObjSize xmlns=\"syncml:metinf\">1048576</MaxObjSize>",
        "<Status><CmdID>1</CmdID><MsgRef>2</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>",
        "<TargetRef>IMEI:001</TargetRef>",
        "<SourceRef>https://dm.example.com/dm</SourceRef>",
        "<NextNonce xmlns=\"syncml:metinf\">bm9uY2U=</NextNonce>",
        "<Data>401</Data>",
        "<Source><LocURI>./DevInfo/DevId</LocURI></Source>",
        "<Format xmlns=\"syncml:metinf\">chr</Format>",
        "<Type xmlns=\"syncml:metinf\">text/plain</Type>",
        "<Data>  two\nlines \r\n\t</Data>",
        "<Data/>",
        "<Alert><CmdID>4</CmdID><Data>1201</Data></Alert>",
        "<Final/></SyncBody></SyncML>",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(x, want[i]))
            print_error("libwbxml output lacks %s\n--- output:\n%s\n", want[i], x);
        assert_non_null(strstr(x, want[i]));
    }
    free(xml);
    buf_free(&out);
    syncml_msg_free(&m);
}

/* Valid UTF-8 text travels as STR_I, anything else as OPAQUE; both exact. */
static void test_encode_text_or_opaque(void **state)
{
    static const struct {
        const char *v;
        bool opaque;
    } cases[] = {
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF", false},
        {"\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80", false},
        {"trunc \xC3", true},            /* sequence cut at the end */
        {"trunc \xE2\x82 x", true},     /* sequence cut by ASCII */
        {"\xE0\x80\xAF", true},         /* overlong 3-byte */
        {"\xF0\x80\x80\xAF", true},     /* overlong 4-byte */
        {"\xED\xA0\x80", true},         /* surrogate */
        {"\xF4\x90\x80\x80", true},     /* above U+10FFFF */
        {"\xF8\x88\x80\x80\x80", true}, /* 5-byte form */
        {"\x80 lone continuation", true},
    };
    omadm_t *dm = *state;
    syncml_msg_t m, back;
    buf_t out;
    syncml_msg_init(&m, dm);
    set_hdr(&m);
    syncml_cmd_t *res = syncml_cmd_new(&m, SYNCML_CMD_RESULTS);
    assert_non_null(res);
    res->cmd_id = "1";
    res->msg_ref = "1";
    res->cmd_ref = "2";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        syncml_item_t *it = syncml_item_add(&m, res);
        assert_non_null(it);
        it->source = "./x";
        it->data = (const uint8_t *)cases[i].v;
        it->data_len = strlen(cases[i].v);
        it->has_data = true;
    }
    syncml_cmd_append(&m.cmds, &m.cmds_tail, res);
    encode_ok(dm, &m, &out);
    assert_int_equal(decode(dm, out.data, out.len, &back, NULL), OMADM_OK);
    const syncml_item_t *it = back.cmds->items;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, it = it->next) {
        assert_non_null(it);
        assert_bytes(it->data, it->data_len, cases[i].v, strlen(cases[i].v));
        if (it->data_opaque != cases[i].opaque)
            print_error("case %zu: opaque %d\n", i, it->data_opaque);
        assert_int_equal(it->data_opaque, cases[i].opaque);
    }
    buf_free(&out);
    syncml_msg_free(&back);
    syncml_msg_free(&m);
}

static void test_encode_errors(void **state)
{
    omadm_t *dm = *state;
    syncml_msg_t m;
    buf_t out;
    syncml_msg_init(&m, dm);
    set_hdr(&m);
    syncml_cmd_t *c = syncml_cmd_new(&m, SYNCML_CMD_UNKNOWN);
    assert_non_null(c);
    c->name = "NotASyncMLElement"; /* no token, and we write no string table */
    c->cmd_id = "1";
    syncml_cmd_append(&m.cmds, &m.cmds_tail, c);
    buf_init(&out, dm);
    assert_int_equal(buf_append(&out, "keep", 4), 0);
    assert_int_equal(codec_wbxml_encode(dm, &m, &out), OMADM_E_ENCODE);
    assert_bytes(out.data, out.len, "keep", 4); /* nothing half-written is left */
    assert_int_equal(codec_wbxml_encode(dm, NULL, &out), OMADM_E_INVALID_ARG);
    buf_free(&out);
    syncml_msg_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test_setup_teardown(test_decode_pkg2_strtbl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_pkg2_nostrtbl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_pkg3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_server_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_libwbxml_runtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opaque_binary_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_newline_survives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_pieces_and_entities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strtbl_entry_without_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pi_attrs_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test_setup_teardown(test_encode_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reencode_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_readable_by_libwbxml, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_text_or_opaque, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
