//! Symbol-table parsers (kallsyms, System.map) into flat columns.
