/* docs/openapi.json as read-only bytes, for h_openapi.c. */
    .section .rodata
    .global parley_openapi_json
    .global parley_openapi_json_end
    .balign 16
parley_openapi_json:
    .incbin "docs/openapi.json"
parley_openapi_json_end:
    .byte 0
    .section .note.GNU-stack,"",@progbits
