using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Thrivestack.EfCore.Sample.Migrations
{
    /// <inheritdoc />
    public partial class UnboundedThrivestackIds : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {

        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {

        }
    }
}
